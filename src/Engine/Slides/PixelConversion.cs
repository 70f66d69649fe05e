using SlidePlugin.Engine.Imaging;

namespace SlidePlugin.Engine.Slides;

/// <summary>OpenSlide's pixel format converted at the boundary, once, as openslide-python does.</summary>
internal static class PixelConversion
{
    /// <summary>The RGBA raster of an OpenSlide ARGB buffer of <paramref name="width"/> x <paramref name="height"/>.</summary>
    public static Raster ToRaster(uint[] argb, int width, int height)
    {
        var rgba = new byte[argb.LongLength * 4];
        PremultipliedArgbToRgba(argb, rgba);
        return new Raster(width, height, 4, rgba);
    }

    /// <summary>
    /// Premultiplied ARGB (one native-endian uint32 a pixel, as OpenSlide writes it) to straight RGBA bytes.
    /// Transparent pixels become (0,0,0,0); partly transparent ones are un-premultiplied with integer
    /// division (<c>255 * c / a</c>), exactly as openslide-python's <c>_convert.argb2rgba</c>.
    /// </summary>
    public static void PremultipliedArgbToRgba(ReadOnlySpan<uint> argb, Span<byte> rgba)
    {
        if (rgba.Length < argb.Length * 4)
        {
            throw new ArgumentException("Destination too small.", nameof(rgba));
        }

        for (int i = 0; i < argb.Length; i++)
        {
            uint value = argb[i];
            uint a = value >> 24;
            uint r = (value >> 16) & 0xFF;
            uint g = (value >> 8) & 0xFF;
            uint b = value & 0xFF;
            if (a != 255 && a != 0)
            {
                r = 255 * r / a;
                g = 255 * g / a;
                b = 255 * b / a;
            }

            int o = i * 4;
            rgba[o] = (byte)r;
            rgba[o + 1] = (byte)g;
            rgba[o + 2] = (byte)b;
            rgba[o + 3] = (byte)a;
        }
    }
}
