using SlidePlugin.Engine.Imaging;

namespace SlidePlugin.Engine.Datasets;

/// <summary>How an image becomes a bag: optional centre crop, a grid of square patches, mostly-white patches dropped.</summary>
public sealed record ImagePatchOptions
{
    /// <summary>Patch edge in pixels (28 for BreakHis as the seed paper, 32 for UCSB breast).</summary>
    public int PatchSize { get; init; } = 32;

    /// <summary>Centre crop (width, height) before cutting, or null for the whole image (BreakHis: 700 x 448).</summary>
    public (int Width, int Height)? CenterCrop { get; init; }

    /// <summary>A patch is dropped when at least this fraction of its pixels is white; 1 or more keeps every patch.</summary>
    public double MaxWhiteFraction { get; init; } = 1.0;

    /// <summary>A pixel is white when all its channels are at least this value.</summary>
    public byte WhiteLevel { get; init; } = 200;

    /// <summary>Keep grey images grey (1 channel) instead of RGB.</summary>
    public int Channels { get; init; } = 3;
}

/// <summary>Cuts decoded images into the patches of a bag.</summary>
public static class ImagePatches
{
    /// <summary>Decodes <paramref name="path"/> (libvips) and cuts it into patches.</summary>
    /// <exception cref="DatasetException">The file cannot be read or decoded, or is smaller than the crop; the message names the file.</exception>
    public static PatchBag FromFile(string path, ImagePatchOptions options)
    {
        ArgumentNullException.ThrowIfNull(path);
        Raster image;
        try
        {
            image = ImageCodec.Decode(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is ImageCodecException or IOException or UnauthorizedAccessException)
        {
            throw new DatasetException($"Cannot read image '{path}': {e.Message}", e);
        }

        try
        {
            return FromRaster(image, options);
        }
        catch (ArgumentException e)
        {
            throw new DatasetException($"Image '{path}': {e.Message}", e);
        }
    }

    /// <summary>Cuts <paramref name="image"/> into a grid of patches (row-major, left to right), dropping mostly-white ones.</summary>
    public static PatchBag FromRaster(Raster image, ImagePatchOptions options)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Channels is not (1 or 3))
        {
            throw new ArgumentException($"Patches have 1 or 3 channels, not {options.Channels}.", nameof(options));
        }

        if (image.Bands == 4 || image.Bands == 2)
        {
            image = image.Flatten((255, 255, 255));
        }

        (int width, int height) = options.CenterCrop ?? (image.Width, image.Height);
        if (width > image.Width || height > image.Height)
        {
            throw new ArgumentException($"the image is {image.Width}x{image.Height}, smaller than the {width}x{height} crop.");
        }

        int left = (image.Width - width) / 2, top = (image.Height - height) / 2;
        int p = options.PatchSize, c = options.Channels, columns = width / p, rows = height / p;
        if (columns == 0 || rows == 0)
        {
            throw new ArgumentException($"a {width}x{height} image holds no {p}x{p} patch.");
        }

        var kept = new List<byte[]>(columns * rows);
        for (int row = 0; row < rows; row++)
        {
            for (int column = 0; column < columns; column++)
            {
                byte[] patch = Cut(image, left + (column * p), top + (row * p), p, c, options.WhiteLevel, out int white);
                if (options.MaxWhiteFraction >= 1 || white < options.MaxWhiteFraction * p * p)
                {
                    kept.Add(patch);
                }
            }
        }

        byte[] pixels = new byte[kept.Count * p * p * c];
        for (int i = 0; i < kept.Count; i++)
        {
            kept[i].CopyTo(pixels, i * p * p * c);
        }

        return new PatchBag(pixels, kept.Count, p, c);
    }

    /// <summary>One patch as interleaved bytes, converting grey↔RGB (grey = ITU-R 601 luma), and its count of white pixels.</summary>
    private static byte[] Cut(Raster image, int x0, int y0, int size, int channels, byte whiteLevel, out int white)
    {
        byte[] patch = new byte[size * size * channels];
        int bands = image.Bands;
        white = 0;
        for (int y = 0; y < size; y++)
        {
            ReadOnlySpan<byte> line = image.Pixels.AsSpan((((y0 + y) * image.Width) + x0) * bands, size * bands);
            for (int x = 0; x < size; x++)
            {
                ReadOnlySpan<byte> pixel = line.Slice(x * bands, bands);
                byte r = pixel[0], g = bands >= 3 ? pixel[1] : r, b = bands >= 3 ? pixel[2] : r;
                if (r >= whiteLevel && g >= whiteLevel && b >= whiteLevel)
                {
                    white++;
                }

                int at = ((y * size) + x) * channels;
                if (channels == 3)
                {
                    patch[at] = r;
                    patch[at + 1] = g;
                    patch[at + 2] = b;
                }
                else
                {
                    patch[at] = (byte)Math.Round((0.299 * r) + (0.587 * g) + (0.114 * b));
                }
            }
        }

        return patch;
    }
}
