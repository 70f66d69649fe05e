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
}
