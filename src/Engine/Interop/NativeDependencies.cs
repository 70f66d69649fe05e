using System.Runtime.InteropServices;

namespace SlidePlugin.Engine.Interop;

/// <summary>
/// Start-up check of the native libraries: each is loaded once and asked for its version, so a
/// missing package is reported by name before any work starts, instead of surfacing later as a
/// <see cref="TypeInitializationException"/> deep inside a request.
/// </summary>
public static class NativeDependencies
{
    /// <summary>Loads every library in <see cref="Libraries.All"/> and reports what it found.</summary>
    public static IReadOnlyList<NativeDependencyStatus> Check() => Check(Libraries.All);

    /// <summary>Loads each of <paramref name="dependencies"/> and reports what it found.</summary>
    public static IReadOnlyList<NativeDependencyStatus> Check(IEnumerable<NativeDependency> dependencies)
    {
        ArgumentNullException.ThrowIfNull(dependencies);
        return dependencies.Select(CheckOne).ToList();
    }

    /// <summary>Throws <see cref="NativeDependencyException"/> naming every missing package, if any is missing.</summary>
    public static IReadOnlyList<NativeDependencyStatus> EnsureAvailable(IEnumerable<NativeDependency>? dependencies = null)
    {
        IReadOnlyList<NativeDependencyStatus> statuses = Check(dependencies ?? Libraries.All);
        var missing = statuses.Where(s => !s.IsLoaded).ToList();
        if (missing.Count > 0)
        {
            throw new NativeDependencyException(string.Join(Environment.NewLine, missing.Select(s => s.Error)));
        }

        return statuses;
    }

    /// <summary>The message for a library that could not be loaded: what, which file, and how to install it.</summary>
    public static string MissingMessage(NativeDependency dependency, string fileName)
    {
        ArgumentNullException.ThrowIfNull(dependency);
        return $"{dependency.DisplayName} could not be loaded ({fileName}). " +
               $"Install the Debian package '{dependency.DebianPackage}': sudo apt-get install {dependency.DebianPackage} " +
               "(or run packaging/install-deps.sh).";
    }

    private static NativeDependencyStatus CheckOne(NativeDependency dependency)
    {
        string fileName = Libraries.FileNameOf(dependency);
        if (!NativeLibrary.TryLoad(fileName, out IntPtr handle))
        {
            return new(dependency, fileName, null, MissingMessage(dependency, fileName));
        }

        // The handle stays loaded: the process will bind to this library anyway, and unloading a
        // library that OpenSlide or libvips initialised is not safe.
        if (!NativeLibrary.TryGetExport(handle, dependency.VersionSymbol, out IntPtr versionFunction))
        {
            return new(dependency, fileName, null,
                $"{dependency.DisplayName} ({fileName}) loaded but has no '{dependency.VersionSymbol}': " +
                $"it is not the library the engine was built for. Install the Debian package '{dependency.DebianPackage}'.");
        }

        string version = dependency.ReportsVersion ? ReadVersion(versionFunction) : "(the library reports no version)";
        return new(dependency, fileName, version, null);
    }

    private static unsafe string ReadVersion(IntPtr versionFunction)
    {
        var getVersion = (delegate* unmanaged<byte*>)versionFunction;
        return Marshal.PtrToStringUTF8((IntPtr)getVersion())?.Trim() ?? "unknown";
    }
}
