using System.Runtime.InteropServices;

namespace SlidePlugin.Engine.Interop;

/// <summary>
/// Raw externs of libvips 8.14 (vips/vips.h) and the two GLib calls it needs. Several libvips calls are
/// C varargs lists of option name/value pairs ending in NULL; they are declared here with the fixed
/// arity used, passing only pointer and int options (the x86-64 SysV ABI passes those in general
/// registers exactly as for a non-variadic call), never double options.
/// Errors: a call returns non-zero or NULL and leaves its message in <see cref="ErrorBuffer"/>.
/// </summary>
internal static partial class VipsNative
{
    /// <summary>VIPS_FORMAT_UCHAR.</summary>
    public const int FormatUChar = 0;

    /// <summary>VIPS_INTERPRETATION_sRGB.</summary>
    public const int InterpretationSrgb = 22;

    /// <summary>VIPS_INTERPRETATION_B_W.</summary>
    public const int InterpretationGrey = 1;

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_init", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Init(string argv0);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_cache_set_max")]
    internal static partial void CacheSetMax(int max);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_vector_set_enabled")]
    internal static partial void VectorSetEnabled(int enabled);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_error_buffer")]
    internal static partial IntPtr ErrorBuffer();

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_error_clear")]
    internal static partial void ErrorClear();

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_image_new_from_buffer", StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial IntPtr ImageNewFromBuffer(byte* buffer, nuint length, string optionString, IntPtr terminator);

    /// <summary>VIPS_ACCESS_RANDOM.</summary>
    public const int AccessRandom = 0;

    /// <summary>
    /// Opens one page of a TIFF lazily with the TIFF loader itself (by file name libvips would hand an .svs to
    /// its OpenSlide loader). Pass "page", n, "access", <see cref="AccessRandom"/>, "fail", 1.
    /// </summary>
    [LibraryImport(Libraries.Vips, EntryPoint = "vips_tiffload", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int TiffLoad(string fileName, out IntPtr output, string pageName, int page, string accessName, int access, string failName, int fail, IntPtr terminator);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_crop")]
    internal static partial int Crop(VipsImageHandle input, out IntPtr output, int left, int top, int width, int height, IntPtr terminator);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_region_new")]
    internal static partial IntPtr RegionNew(VipsImageHandle image);

    /// <summary>The pixels of a rectangle, computed on the calling thread (no thread pool), in a buffer to free with g_free.</summary>
    [LibraryImport(Libraries.Vips, EntryPoint = "vips_region_fetch")]
    internal static partial IntPtr RegionFetch(IntPtr region, int left, int top, int width, int height, out nuint length);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_image_new_from_memory_copy")]
    internal static unsafe partial IntPtr ImageNewFromMemoryCopy(byte* data, nuint size, int width, int height, int bands, int format);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_image_write_to_memory")]
    internal static partial IntPtr ImageWriteToMemory(VipsImageHandle image, out nuint size);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_image_get_width")]
    internal static partial int ImageGetWidth(VipsImageHandle image);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_image_get_height")]
    internal static partial int ImageGetHeight(VipsImageHandle image);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_image_get_bands")]
    internal static partial int ImageGetBands(VipsImageHandle image);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_image_get_format")]
    internal static partial int ImageGetFormat(VipsImageHandle image);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_image_get_interpretation")]
    internal static partial int ImageGetInterpretation(VipsImageHandle image);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_colourspace")]
    internal static partial int Colourspace(VipsImageHandle input, out IntPtr output, int space, IntPtr terminator);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_cast")]
    internal static partial int Cast(VipsImageHandle input, out IntPtr output, int format, IntPtr terminator);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_pngsave_buffer", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int PngSaveBuffer(VipsImageHandle input, out IntPtr buffer, out nuint length, string compressionName, int compression, IntPtr terminator);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_resize", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Resize(VipsImageHandle input, out IntPtr output, double scale, string kernelName, int kernel, IntPtr terminator);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_reduce", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Reduce(VipsImageHandle input, out IntPtr output, double hshrink, double vshrink, string kernelName, int kernel, IntPtr terminator);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_black", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Black(out IntPtr output, int width, int height, string bandsName, int bands, IntPtr terminator);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_linear", StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial int Linear(VipsImageHandle input, out IntPtr output, double* a, double* b, int n, string ucharName, int uchar, IntPtr terminator);

    /// <summary>Renders text (Pango markup) as a one-band 8-bit coverage mask.</summary>
    [LibraryImport(Libraries.Vips, EntryPoint = "vips_text", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Text(out IntPtr output, string text, string fontName, string font, string dpiName, int dpi, IntPtr terminator);

    [LibraryImport(Libraries.Vips, EntryPoint = "vips_insert")]
    internal static partial int Insert(VipsImageHandle main, VipsImageHandle sub, out IntPtr output, int x, int y, IntPtr terminator);

    /// <summary>Saves by file suffix; options ride in the name, e.g. <c>out.tif[tile,pyramid]</c> (no double varargs needed).</summary>
    [LibraryImport(Libraries.Vips, EntryPoint = "vips_image_write_to_file", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int ImageWriteToFile(VipsImageHandle image, string nameWithOptions, IntPtr terminator);

    [LibraryImport(Libraries.GObject, EntryPoint = "g_object_unref")]
    internal static partial void ObjectUnref(IntPtr obj);

    [LibraryImport(Libraries.GLib, EntryPoint = "g_free")]
    internal static partial void Free(IntPtr memory);
}

/// <summary>Owns a <c>VipsImage*</c> reference; <c>g_object_unref</c> runs exactly once.</summary>
internal sealed class VipsImageHandle : SafeHandle
{
    public VipsImageHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    internal VipsImageHandle(IntPtr handle) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(handle);

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        VipsNative.ObjectUnref(handle);
        return true;
    }
}
