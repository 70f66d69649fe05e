namespace SlidePlugin.Engine.Slides;

/// <summary>
/// An 8-bit RGBA image with straight (not premultiplied) alpha, rows top to bottom, 4 bytes a pixel:
/// what openslide-python's <c>read_region</c> returns as a PIL "RGBA" image.
/// </summary>
public sealed class RgbaImage
{
    /// <summary>Wraps <paramref name="pixels"/>; its length must be <c>width * height * 4</c>.</summary>
    public RgbaImage(int width, int height, byte[] pixels)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(width);
        ArgumentOutOfRangeException.ThrowIfNegative(height);
        ArgumentNullException.ThrowIfNull(pixels);
        if (pixels.LongLength != (long)width * height * 4)
        {
            throw new ArgumentException($"{width}x{height} RGBA needs {(long)width * height * 4} bytes, not {pixels.LongLength}.", nameof(pixels));
        }

        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>RGBA bytes, row-major.</summary>
    public byte[] Pixels { get; }

    /// <summary>The pixel at column <paramref name="x"/>, row <paramref name="y"/>.</summary>
    public (byte R, byte G, byte B, byte A) this[int x, int y]
    {
        get
        {
            int i = ((y * Width) + x) * 4;
            return (Pixels[i], Pixels[i + 1], Pixels[i + 2], Pixels[i + 3]);
        }
    }
}
