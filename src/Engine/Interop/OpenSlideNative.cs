using System.Runtime.InteropServices;

namespace SlidePlugin.Engine.Interop;

/// <summary>
/// Raw externs of libopenslide 3.4.1 (openslide.h). Strings are UTF-8; string arrays are
/// NULL-terminated and owned by the handle. Every call may latch an error on the handle:
/// callers check <see cref="GetError"/> afterwards (see <see cref="Slides.Slide"/>).
/// </summary>
internal static partial class OpenSlideNative
{
    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_detect_vendor", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial IntPtr DetectVendor(string filename);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_open", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial IntPtr Open(string filename);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_close")]
    internal static partial void Close(IntPtr osr);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_get_error")]
    internal static partial IntPtr GetError(OpenSlideHandle osr);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_get_level_count")]
    internal static partial int GetLevelCount(OpenSlideHandle osr);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_get_level_dimensions")]
    internal static partial void GetLevelDimensions(OpenSlideHandle osr, int level, out long w, out long h);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_get_level_downsample")]
    internal static partial double GetLevelDownsample(OpenSlideHandle osr, int level);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_get_best_level_for_downsample")]
    internal static partial int GetBestLevelForDownsample(OpenSlideHandle osr, double downsample);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_read_region")]
    internal static unsafe partial void ReadRegion(OpenSlideHandle osr, uint* dest, long x, long y, int level, long w, long h);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_get_property_names")]
    internal static partial IntPtr GetPropertyNames(OpenSlideHandle osr);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_get_property_value", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial IntPtr GetPropertyValue(OpenSlideHandle osr, string name);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_get_associated_image_names")]
    internal static partial IntPtr GetAssociatedImageNames(OpenSlideHandle osr);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_get_associated_image_dimensions", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial void GetAssociatedImageDimensions(OpenSlideHandle osr, string name, out long w, out long h);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_read_associated_image", StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial void ReadAssociatedImage(OpenSlideHandle osr, string name, uint* dest);

    [LibraryImport(Libraries.OpenSlide, EntryPoint = "openslide_get_version")]
    internal static partial IntPtr GetVersion();

    /// <summary>Reads a NULL-terminated array of UTF-8 strings owned by OpenSlide.</summary>
    internal static unsafe List<string> ReadStringArray(IntPtr array)
    {
        var result = new List<string>();
        if (array == IntPtr.Zero)
        {
            return result;
        }

        for (var p = (IntPtr*)array; *p != IntPtr.Zero; p++)
        {
            result.Add(Marshal.PtrToStringUTF8(*p)!);
        }

        return result;
    }
}

/// <summary>Owns an <c>openslide_t*</c>; <c>openslide_close</c> runs exactly once.</summary>
internal sealed class OpenSlideHandle : SafeHandle
{
    public OpenSlideHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    internal OpenSlideHandle(IntPtr handle) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(handle);

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        OpenSlideNative.Close(handle);
        return true;
    }
}
