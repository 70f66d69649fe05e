using SlidePlugin.Engine.Imaging;

namespace SlidePlugin.Engine.LabelMasks;

/// <summary>
/// A label mask: one class code per pixel, row-major, x = column and y = row. Read from single-band 8-bit images
/// (BCSS masks are greyscale PNGs whose value is the code).
/// </summary>
public sealed class LabelMask
{
    /// <summary>Wraps <paramref name="codes"/> (width x height bytes).</summary>
    public LabelMask(int width, int height, byte[] codes)
    {
        ArgumentNullException.ThrowIfNull(codes);
        if ((long)width * height != codes.Length || width < 1 || height < 1)
        {
            throw new ArgumentException($"{codes.Length} codes are not a {width}x{height} mask.", nameof(codes));
        }

        Width = width;
        Height = height;
        Codes = codes;
    }

    /// <summary>Width in pixels (columns, x).</summary>
    public int Width { get; }

    /// <summary>Height in pixels (rows, y).</summary>
    public int Height { get; }

    /// <summary>Codes, row-major.</summary>
    public byte[] Codes { get; }

    /// <summary>The codes as a single-band raster sharing this mask's array (to crop or encode them as an image).</summary>
    public Raster ToRaster() => new(Width, Height, 1, Codes);

    /// <summary>Reads a single-band mask image and checks every code against <paramref name="table"/>.</summary>
    /// <exception cref="LabelMaskException">Unreadable, not single-band, or holding a code the table does not name.</exception>
    public static LabelMask Load(string path, LabelTable table)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LabelMaskException($"Cannot read mask '{path}': {e.Message}", e);
        }

        return Decode(bytes, table, path);
    }

    /// <summary>Decodes a single-band mask image (<paramref name="source"/> names it in errors) and checks every code against <paramref name="table"/>.</summary>
    /// <exception cref="LabelMaskException">Not an image, not single-band, or holding a code the table does not name.</exception>
    public static LabelMask Decode(ReadOnlySpan<byte> encoded, LabelTable table, string source, long maxPixels = long.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(table);
        Raster image;
        try
        {
            image = ImageCodec.Decode(encoded, maxPixels);
        }
        catch (ImageCodecException e)
        {
            throw new LabelMaskException($"Cannot read mask '{source}': {e.Message}", e);
        }

        if (image.Bands != 1)
        {
            // A coloured rendering (RGB or RGBA) is the usual case; the palette tool turns it into codes by the table's colours.
            throw new LabelMaskException($"Mask '{source}' has {image.Bands} bands; a label mask has one (the class code per pixel)."
                + (image.Bands >= 3 ? " A coloured mask is turned into codes by the table's colours with 'slideplugin dataset palette --to-codes' (gRPC: DatasetService.MaskToCodes)." : ""));
        }

        var mask = new LabelMask(image.Width, image.Height, image.Pixels);
        mask.CheckCodes(table, source);
        return mask;
    }

    /// <summary>Throws when a pixel holds a code <paramref name="table"/> does not name (the first such code and its count).</summary>
    /// <exception cref="LabelMaskException">A code outside the table.</exception>
    public void CheckCodes(LabelTable table, string source)
    {
        ArgumentNullException.ThrowIfNull(table);
        long[] counts = ClassStatistics.Histogram(Codes);
        for (int code = 0; code < counts.Length; code++)
        {
            if (counts[code] > 0 && !table.Contains((byte)code))
            {
                throw new LabelMaskException($"Mask '{source}' holds code {code} ({counts[code]} pixels), which '{table.Source}' does not name.");
            }
        }
    }
}
