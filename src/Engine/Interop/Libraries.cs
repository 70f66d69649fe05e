using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SlidePlugin.Engine.Interop;

/// <summary>
/// The native libraries the engine binds to, by the logical names used in <c>[LibraryImport]</c>,
/// and how each is found on disk. One place for every name, so a port to another platform or a
/// GPU build changes this file only.
/// </summary>
public static class Libraries
{
    /// <summary>Logical name of OpenSlide in <c>LibraryImport</c>.</summary>
    public const string OpenSlide = "openslide";

    /// <summary>Logical name of libvips in <c>LibraryImport</c>.</summary>
    public const string Vips = "vips";

    /// <summary>Logical name of OpenBLAS in <c>LibraryImport</c>.</summary>
    public const string OpenBlas = "openblas";

    /// <summary>Logical name of TurboJPEG (libjpeg-turbo's simple API) in <c>LibraryImport</c>.</summary>
    public const string TurboJpeg = "turbojpeg";

    /// <summary>Logical name of libpng (indexed PNGs that keep their palette indices: label masks).</summary>
    public const string Png = "png";

    /// <summary>Logical name of GObject (reference counting of libvips images); installed with libvips.</summary>
    public const string GObject = "gobject";

    /// <summary>Logical name of GLib (freeing buffers libvips returns); installed with libvips.</summary>
    public const string GLib = "glib";

    /// <summary>Every native dependency, in the order they are checked at start-up.</summary>
    public static IReadOnlyList<NativeDependency> All { get; } =
    [
        new(OpenSlide, "OpenSlide", "libopenslide.so.0", "libopenslide0", "openslide_get_version"),
        new(Vips, "libvips", "libvips.so.42", "libvips42", "vips_version_string"),
        new(OpenBlas, "OpenBLAS", "libopenblas.so.0", "libopenblas0", "openblas_get_config"),
        new(TurboJpeg, "TurboJPEG", "libturbojpeg.so.0", "libturbojpeg0", "tjInitCompress", ReportsVersion: false),
        new(Png, "libpng", "libpng16.so.16", "libpng16-16", "png_get_libpng_ver"),
    ];

    /// <summary>Libraries that come with one of <see cref="All"/> (libvips' GLib), resolved by the same rules but not checked on their own.</summary>
    private static IReadOnlyList<NativeDependency> Companions { get; } =
    [
        new(GObject, "GObject", "libgobject-2.0.so.0", "libglib2.0-0", "g_object_unref"),
        new(GLib, "GLib", "libglib-2.0.so.0", "libglib2.0-0", "g_free"),
    ];

    /// <summary>
    /// Prefix of the environment variables that replace a library's file name, e.g.
    /// <c>SLIDEPLUGIN_NATIVE_OPENSLIDE=/opt/openslide/lib/libopenslide.so.1</c>.
    /// </summary>
    public const string OverrideVariablePrefix = "SLIDEPLUGIN_NATIVE_";

    /// <summary>The dependency with this logical name.</summary>
    public static NativeDependency Get(string logicalName) =>
        All.FirstOrDefault(d => d.LogicalName == logicalName)
        ?? throw new ArgumentException($"Unknown native library '{logicalName}'.", nameof(logicalName));

    /// <summary>The file name the loader tries for <paramref name="dependency"/>, honouring the override variable.</summary>
    public static string FileNameOf(NativeDependency dependency)
    {
        ArgumentNullException.ThrowIfNull(dependency);
        string? overridden = Environment.GetEnvironmentVariable(OverrideVariablePrefix + dependency.LogicalName.ToUpperInvariant());
        return string.IsNullOrWhiteSpace(overridden) ? dependency.FileName : overridden;
    }

    // The resolver must be in place before the first P/Invoke of this assembly runs.
#pragma warning disable CA2255 // ModuleInitializer in a library: intended, it only installs the DllImport resolver.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void InstallResolver()
    {
        NativeLibrary.SetDllImportResolver(typeof(Libraries).Assembly, Resolve);
        OpenBlasCoreType.Select(); // OpenBLAS reads it once, when it loads
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        NativeDependency? dependency = All.Concat(Companions).FirstOrDefault(d => d.LogicalName == libraryName);
        if (dependency is null)
        {
            return IntPtr.Zero; // not ours: let the runtime's default probing handle it
        }

        string fileName = FileNameOf(dependency);
        if (NativeLibrary.TryLoad(fileName, assembly, searchPath, out IntPtr handle))
        {
            return handle;
        }

        throw new NativeDependencyException(dependency, fileName);
    }
}
