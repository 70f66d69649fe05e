using System.Runtime.InteropServices;

namespace SlidePlugin.Engine.Interop;

/// <summary>
/// libpng 1.6's simplified write API (png.h, Debian libpng16-16): a colour-mapped PNG whose pixel values are the
/// indices given, with the palette given. libvips quantises palettes, which would renumber label codes. Errors: a call
/// returns 0 and <see cref="PngImage.Message"/> says why; nothing longjmps through managed frames.
/// </summary>
internal static partial class PngNative
{
    /// <summary>PNG_IMAGE_VERSION.</summary>
    public const uint ImageVersion = 1;

    /// <summary>PNG_FORMAT_RGB_COLORMAP: one byte per pixel, an index into an RGB colour map.</summary>
    public const uint FormatRgbColormap = 0x02 | 0x08;

    /// <summary>png_image: the caller-visible state of a simplified read or write.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct PngImage
    {
        public IntPtr Opaque;
        public uint Version;
        public uint Width;
        public uint Height;
        public uint Format;
        public uint Flags;
        public uint ColormapEntries;
        public uint WarningOrError;
        public fixed byte MessageBytes[64];

        /// <summary>libpng's message after a failure.</summary>
        public readonly string Message
        {
            get
            {
                fixed (byte* text = MessageBytes)
                {
                    return Marshal.PtrToStringUTF8((IntPtr)text) ?? string.Empty;
                }
            }
        }
    }

    /// <summary>png_image_write_to_memory: with <paramref name="memory"/> null, only sets <paramref name="memoryBytes"/> to the size needed.</summary>
    [LibraryImport(Libraries.Png, EntryPoint = "png_image_write_to_memory")]
    internal static unsafe partial int WriteToMemory(PngImage* image, byte* memory, ref nuint memoryBytes, int convertTo8Bit, byte* buffer, int rowStride, byte* colormap);
}
