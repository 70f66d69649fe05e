namespace SlidePlugin.Engine.Imaging;

/// <summary>
/// An 8-bit image, bands interleaved, rows top to bottom: 1 band grey, 2 grey + alpha, 3 RGB, 4 RGBA
/// (straight alpha). Slide reads are RGBA, as openslide-python's <c>read_region</c> returns.
/// </summary>
public sealed class Raster
{
    /// <summary>Wraps <paramref name="pixels"/>; its length must be <c>width * height * bands</c>.</summary>
    public Raster(int width, int height, int bands, byte[] pixels)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(width);
        ArgumentOutOfRangeException.ThrowIfNegative(height);
        ArgumentOutOfRangeException.ThrowIfLessThan(bands, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bands, 4);
        ArgumentNullException.ThrowIfNull(pixels);
        if (pixels.LongLength != (long)width * height * bands)
        {
            throw new ArgumentException($"{width}x{height}x{bands} needs {(long)width * height * bands} bytes, not {pixels.LongLength}.", nameof(pixels));
        }

        Width = width;
        Height = height;
        Bands = bands;
        Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Bands a pixel: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.</summary>
    public int Bands { get; }

    /// <summary>The bytes, row-major, bands interleaved.</summary>
    public byte[] Pixels { get; }

    /// <summary>The bands of the pixel at column <paramref name="x"/>, row <paramref name="y"/>.</summary>
    public ReadOnlySpan<byte> this[int x, int y] => Pixels.AsSpan(((y * Width) + x) * Bands, Bands);

    /// <summary>Copies the <paramref name="width"/> x <paramref name="height"/> rectangle at column <paramref name="x"/>, row <paramref name="y"/> into <paramref name="destination"/>, row after row.</summary>
    public void CopyTo(int x, int y, int width, int height, Span<byte> destination)
    {
        if (x < 0 || y < 0 || width < 1 || height < 1 || x + width > Width || y + height > Height)
        {
            throw new ArgumentOutOfRangeException(nameof(width), $"The rectangle {width}x{height} at ({x}, {y}) is not inside the {Width}x{Height} raster.");
        }

        int rowBytes = width * Bands;
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, height * rowBytes, nameof(destination));
        for (int row = 0; row < height; row++)
        {
            Pixels.AsSpan((((y + row) * Width) + x) * Bands, rowBytes).CopyTo(destination.Slice(row * rowBytes, rowBytes));
        }
    }

    /// <summary>A copy of the <paramref name="width"/> x <paramref name="height"/> rectangle at column <paramref name="x"/>, row <paramref name="y"/>.</summary>
    public Raster Crop(int x, int y, int width, int height)
    {
        var pixels = new byte[Math.Max(0, width) * Math.Max(0, height) * Bands];
        CopyTo(x, y, width, height, pixels);
        return new Raster(width, height, Bands, pixels);
    }

    /// <summary>
    /// This RGBA raster over an opaque <paramref name="background"/>, as RGB; rounded as PIL's
    /// <c>Image.composite</c>, so fully opaque and fully transparent pixels are exact.
    /// </summary>
    /// <summary>
    /// The raster as opaque RGB: grey copied to three channels, alpha composited on <paramref name="background"/> as
    /// <see cref="Flatten"/> does; an RGB raster is returned as is.
    /// </summary>
    public Raster ToRgb((byte R, byte G, byte B) background)
    {
        switch (Bands)
        {
            case 3:
                return this;
            case 4:
                return Flatten(background);
            default:
                var rgba = new byte[Width * Height * 4];
                ReadOnlySpan<byte> source = Pixels;
                for (int i = 0, o = 0; o < rgba.Length; i += Bands, o += 4)
                {
                    rgba[o] = rgba[o + 1] = rgba[o + 2] = source[i];
                    rgba[o + 3] = Bands == 2 ? source[i + 1] : (byte)255;
                }

                return new Raster(Width, Height, 4, rgba).Flatten(background);
        }
    }

    public Raster Flatten((byte R, byte G, byte B) background)
    {
        if (Bands != 4)
        {
            throw new InvalidOperationException($"Flatten needs an RGBA raster, not {Bands} bands.");
        }

        var rgb = new byte[Width * Height * 3];
        ReadOnlySpan<byte> source = Pixels;
        for (int i = 0, o = 0; i < source.Length; i += 4, o += 3)
        {
            int a = source[i + 3];
            rgb[o] = Blend(source[i], background.R, a);
            rgb[o + 1] = Blend(source[i + 1], background.G, a);
            rgb[o + 2] = Blend(source[i + 2], background.B, a);
        }

        return new Raster(Width, Height, 3, rgb);

        // PIL's paste-with-mask: (src * a + dst * (255 - a)) / 255, rounded to nearest.
        static byte Blend(int foreground, int back, int alpha) => alpha switch
        {
            255 => (byte)foreground,
            0 => (byte)back,
            _ => (byte)(((foreground * alpha) + (back * (255 - alpha)) + 127) / 255),
        };
    }
}
