using SlidePlugin.Engine.Imaging;

namespace SlidePlugin.Engine.Slides;

/// <summary>OpenSlide's pixel format converted at the boundary, once, as openslide-python does.</summary>
internal static class PixelConversion
{
    /// <summary>The RGBA raster of an OpenSlide ARGB buffer of <paramref name="width"/> x <paramref name="height"/>.</summary>
    public static Raster ToRaster(ReadOnlySpan<uint> argb, int width, int height)
    {
        var rgba = new byte[argb.Length * 4];
        PremultipliedArgbToRgba(argb, rgba);
        return new Raster(width, height, 4, rgba);
    }

    /// <summary>An RGB raster as RGBA with every pixel opaque (what OpenSlide returns inside a level).</summary>
    public static Raster RgbToOpaqueRgba(Raster rgb)
    {
        var rgba = new byte[rgb.Width * rgb.Height * 4];
        ReadOnlySpan<byte> source = rgb.Pixels;
        for (int i = 0, o = 0; i < source.Length; i += 3, o += 4)
        {
            rgba[o] = source[i];
            rgba[o + 1] = source[i + 1];
            rgba[o + 2] = source[i + 2];
            rgba[o + 3] = 255;
        }

        return new Raster(rgb.Width, rgb.Height, 4, rgba);
    }

    /// <summary>The RGB raster of an OpenSlide ARGB buffer composited on <paramref name="background"/>.</summary>
    public static Raster ToRgbRaster(ReadOnlySpan<uint> argb, int width, int height, (byte R, byte G, byte B) background)
    {
        var rgb = new byte[argb.Length * 3];
        PremultipliedArgbToRgb(argb, rgb, background);
        return new Raster(width, height, 3, rgb);
    }

    /// <summary>
    /// Premultiplied ARGB straight to RGB over an opaque <paramref name="background"/> in one pass, with exactly the
    /// arithmetic of <see cref="PremultipliedArgbToRgba"/> followed by <see cref="Raster.Flatten"/> (openslide-python's
    /// un-premultiply, then PIL's composite), so the two paths give identical bytes.
    /// </summary>
    public static void PremultipliedArgbToRgb(ReadOnlySpan<uint> argb, Span<byte> rgb, (byte R, byte G, byte B) background)
    {
        if (rgb.Length < argb.Length * 3)
        {
            throw new ArgumentException("Destination too small.", nameof(rgb));
        }

        for (int i = 0, o = 0; i < argb.Length; i++, o += 3)
        {
            uint value = argb[i];
            uint a = value >> 24;
            if (a == 255)
            {
                rgb[o] = (byte)(value >> 16);
                rgb[o + 1] = (byte)(value >> 8);
                rgb[o + 2] = (byte)value;
            }
            else if (a == 0)
            {
                rgb[o] = background.R;
                rgb[o + 1] = background.G;
                rgb[o + 2] = background.B;
            }
            else
            {
                rgb[o] = Blend(255 * ((value >> 16) & 0xFF) / a, background.R, a);
                rgb[o + 1] = Blend(255 * ((value >> 8) & 0xFF) / a, background.G, a);
                rgb[o + 2] = Blend(255 * (value & 0xFF) / a, background.B, a);
            }
        }

        static byte Blend(uint straight, uint back, uint alpha) => (byte)((((byte)straight * alpha) + (back * (255 - alpha)) + 127) / 255);
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
