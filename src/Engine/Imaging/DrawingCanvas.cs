namespace SlidePlugin.Engine.Imaging;

/// <summary>
/// An RGB raster to draw charts on: filled rectangles, anti-aliasing-free lines, and text rendered by libvips (Pango).
/// Enough for training curves, colour bars and legends; encode with <see cref="ImageCodec.EncodePng"/>.
/// </summary>
public sealed class DrawingCanvas
{
    private readonly byte[] _pixels;

    /// <summary>A <paramref name="width"/> x <paramref name="height"/> canvas filled with <paramref name="background"/>.</summary>
    public DrawingCanvas(int width, int height, (byte R, byte G, byte B) background)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        Width = width;
        Height = height;
        _pixels = new byte[width * height * 3];
        FillRectangle(0, 0, width, height, background);
    }

    /// <summary>A canvas holding a copy of <paramref name="image"/> (RGB), to draw over a picture.</summary>
    public DrawingCanvas(Raster image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Bands != 3)
        {
            throw new ArgumentException($"A drawing canvas is RGB; the image has {image.Bands} bands.", nameof(image));
        }

        Width = image.Width;
        Height = image.Height;
        _pixels = (byte[])image.Pixels.Clone();
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>The drawing as an RGB raster (a copy).</summary>
    public Raster ToRaster() => new(Width, Height, 3, (byte[])_pixels.Clone());

    /// <summary>Sets one pixel; outside the canvas nothing happens.</summary>
    public void SetPixel(int x, int y, (byte R, byte G, byte B) colour)
    {
        if ((uint)x < (uint)Width && (uint)y < (uint)Height)
        {
            int at = ((y * Width) + x) * 3;
            _pixels[at] = colour.R;
            _pixels[at + 1] = colour.G;
            _pixels[at + 2] = colour.B;
        }
    }

    /// <summary>Fills [x, x + width) x [y, y + height), clipped to the canvas.</summary>
    public void FillRectangle(int x, int y, int width, int height, (byte R, byte G, byte B) colour)
    {
        for (int row = Math.Max(0, y); row < Math.Min(Height, y + height); row++)
        {
            for (int column = Math.Max(0, x); column < Math.Min(Width, x + width); column++)
            {
                SetPixel(column, row, colour);
            }
        }
    }

    /// <summary>A line <paramref name="thickness"/> pixels wide from (x0, y0) to (x1, y1) (Bresenham, square pen).</summary>
    public void DrawLine(double x0, double y0, double x1, double y1, (byte R, byte G, byte B) colour, int thickness = 1)
    {
        int steps = (int)Math.Ceiling(Math.Max(Math.Abs(x1 - x0), Math.Abs(y1 - y0)));
        int half = thickness / 2;
        for (int i = 0; i <= steps; i++)
        {
            double t = steps == 0 ? 0 : i / (double)steps;
            int x = (int)Math.Round(x0 + ((x1 - x0) * t)), y = (int)Math.Round(y0 + ((y1 - y0) * t));
            FillRectangle(x - half, y - half, thickness, thickness, colour);
        }
    }

    /// <summary>
    /// Draws <paramref name="text"/> with its top-left corner at (x, y), blending the glyph coverage over the canvas;
    /// <paramref name="anchorRight"/> puts the text's right edge at x instead. Returns the text's size.
    /// </summary>
    public (int Width, int Height) DrawText(string text, int x, int y, (byte R, byte G, byte B) colour, string font = "sans 10", bool anchorRight = false)
    {
        Raster mask = ImageCodec.RenderText(text, font);
        int left = anchorRight ? x - mask.Width : x;
        for (int row = 0; row < mask.Height; row++)
        {
            for (int column = 0; column < mask.Width; column++)
            {
                int cx = left + column, cy = y + row;
                byte coverage = mask.Pixels[(row * mask.Width) + column];
                if (coverage == 0 || (uint)cx >= (uint)Width || (uint)cy >= (uint)Height)
                {
                    continue;
                }

                int at = ((cy * Width) + cx) * 3;
                _pixels[at] = Blend(_pixels[at], colour.R, coverage);
                _pixels[at + 1] = Blend(_pixels[at + 1], colour.G, coverage);
                _pixels[at + 2] = Blend(_pixels[at + 2], colour.B, coverage);
            }
        }

        return (mask.Width, mask.Height);
    }

    private static byte Blend(byte under, byte over, byte coverage) => (byte)(((under * (255 - coverage)) + (over * coverage) + 127) / 255);
}
