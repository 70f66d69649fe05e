using System.Globalization;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.LabelMasks;

namespace SlidePlugin.Engine.Segmentation;

/// <summary>
/// Images with image-level tags for FCN-MIL, in one of two forms: a tags CSV (<c>image,tags</c>, tags separated by
/// <c>;</c>, each a class name or code of the label table), or a folder of images with a folder of label masks of the
/// same names (what <c>dataset cut</c> writes), a class being tagged when it covers at least a fraction of the image —
/// so BCSS-style data trains without its pixels (the masks are kept only to evaluate). The network's classes are the
/// table's, in code order; the first (BCSS <c>outside_roi</c>, or a background class) is the background map.
/// </summary>
public sealed class SegmentationDataset
{
    private static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".tif", ".tiff"];

    private SegmentationDataset(LabelTable table, IReadOnlyList<TaggedImage> images, string description)
    {
        Table = table;
        Images = images;
        Description = description;
        Classes = [.. table.Classes.Select(SegmentationClass.Of)];
    }

    /// <summary>The label table.</summary>
    public LabelTable Table { get; }

    /// <summary>The network's classes, index order.</summary>
    public IReadOnlyList<SegmentationClass> Classes { get; }

    /// <summary>The images, in name order.</summary>
    public IReadOnlyList<TaggedImage> Images { get; }

    /// <summary>Where the data came from and how the tags were made, for the model card.</summary>
    public string Description { get; }

    /// <summary>Input channels: 1 when every image is grey, else 3.</summary>
    public int Channels => Images.All(i => i.Image.Bands <= 2) ? 1 : 3;

    /// <summary>
    /// Images in <paramref name="imagesFolder"/> with masks of the same stem (<c>.png</c>) in <paramref name="masksFolder"/>;
    /// tags: the non-background classes covering at least <paramref name="minFraction"/> of the image.
    /// </summary>
    /// <exception cref="LabelMaskException">A missing folder or mask, an unreadable file, a size mismatch or an unknown code; the message names the file.</exception>
    public static SegmentationDataset FromMasks(string imagesFolder, string masksFolder, LabelTable table, double minFraction = 0.01)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentOutOfRangeException.ThrowIfNegative(minFraction);
        int[] indexOf = IndexOfCode(table);
        var images = new List<TaggedImage>();
        foreach (string path in ImagePaths(imagesFolder))
        {
            string id = Path.GetFileNameWithoutExtension(path);
            string maskPath = Path.Combine(masksFolder, id + ".png");
            if (!File.Exists(maskPath))
            {
                throw new LabelMaskException($"Image '{path}' has no mask '{maskPath}'.");
            }

            Raster image = Decode(path);
            LabelMask mask = LabelMask.Load(maskPath, table);
            if (mask.Width != image.Width || mask.Height != image.Height)
            {
                throw new LabelMaskException($"Mask '{maskPath}' is {mask.Width}x{mask.Height} but its image '{path}' is {image.Width}x{image.Height}.");
            }

            byte[] labels = [.. mask.Codes.Select(code => (byte)indexOf[code])];
            long[] counts = ClassStatistics.Histogram(labels);
            int[] tags = [.. Enumerable.Range(1, table.Classes.Count - 1).Where(c => c < counts.Length && counts[c] >= minFraction * labels.Length && counts[c] > 0)];
            images.Add(new TaggedImage(id, image, tags, labels));
        }

        return new SegmentationDataset(table, images,
            string.Create(CultureInfo.InvariantCulture, $"{images.Count} images from '{imagesFolder}', tags derived from the masks in '{masksFolder}' (a class covering ≥ {minFraction:0.###} of an image), classes from '{table.Source}'"));
    }

    /// <summary>
    /// Images listed in <paramref name="csvPath"/> (<c>image,tags</c>; image paths relative to <paramref name="imagesFolder"/>),
    /// with masks from <paramref name="masksFolder"/> when given (for evaluation only).
    /// </summary>
    /// <exception cref="LabelMaskException">A bad header or line, an unknown class, a missing or unreadable image; the message names the line or file.</exception>
    public static SegmentationDataset FromTagsCsv(string csvPath, string imagesFolder, LabelTable table, string? masksFolder = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (!File.Exists(csvPath))
        {
            throw new LabelMaskException($"Tags file '{csvPath}' does not exist.");
        }

        int[] indexOf = IndexOfCode(table);
        string[] lines = File.ReadAllLines(csvPath);
        if (lines.Length == 0 || !lines[0].Trim().Equals("image,tags", StringComparison.OrdinalIgnoreCase))
        {
            throw new LabelMaskException($"'{csvPath}' line 1: the header must be 'image,tags'.");
        }

        var images = new List<TaggedImage>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i]))
            {
                continue;
            }

            IReadOnlyList<string> cells = CsvFields.Split(lines[i]);
            if (cells.Count != 2 || cells[0].Trim().Length == 0)
            {
                throw new LabelMaskException($"'{csvPath}' line {i + 1}: expected 'image,tags'.");
            }

            string path = Path.Combine(imagesFolder, cells[0].Trim());
            var tags = new SortedSet<int>();
            foreach (string tag in cells[1].Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                LabelClass? named = table.Classes.FirstOrDefault(c => c.Name.Equals(tag, StringComparison.OrdinalIgnoreCase))
                    ?? (byte.TryParse(tag, NumberStyles.None, CultureInfo.InvariantCulture, out byte code) ? table[code] : null);
                int index = named is null ? -1 : indexOf[named.Code];
                if (index < 0)
                {
                    throw new LabelMaskException($"'{csvPath}' line {i + 1}: '{tag}' is neither a class name nor a code in '{table.Source}'.");
                }

                if (index > 0)
                {
                    tags.Add(index);   // the background is always in the label set
                }
            }

            Raster image = Decode(path);
            byte[]? labels = null;
            if (masksFolder is not null)
            {
                LabelMask mask = LabelMask.Load(Path.Combine(masksFolder, Path.GetFileNameWithoutExtension(path) + ".png"), table);
                labels = mask.Width == image.Width && mask.Height == image.Height
                    ? [.. mask.Codes.Select(code => (byte)indexOf[code])]
                    : throw new LabelMaskException($"The mask of '{path}' is {mask.Width}x{mask.Height}; the image is {image.Width}x{image.Height}.");
            }

            images.Add(new TaggedImage(Path.GetFileNameWithoutExtension(path), image, [.. tags], labels));
        }

        return images.Count > 0
            ? new SegmentationDataset(table, images, $"{images.Count} images listed in '{csvPath}' with their tags, classes from '{table.Source}'")
            : throw new LabelMaskException($"'{csvPath}' lists no images.");
    }

    /// <summary>The network class index of each label code (−1 where the table names none).</summary>
    private static int[] IndexOfCode(LabelTable table)
    {
        var indexOf = Enumerable.Repeat(-1, 256).ToArray();
        for (int i = 0; i < table.Classes.Count; i++)
        {
            indexOf[table.Classes[i].Code] = i;
        }

        return indexOf;
    }

    private static List<string> ImagePaths(string folder)
    {
        if (!Directory.Exists(folder))
        {
            throw new LabelMaskException($"Image folder '{folder}' does not exist.");
        }

        List<string> paths = [.. Directory.EnumerateFiles(folder)
            .Where(p => ImageExtensions.Contains(Path.GetExtension(p).ToLowerInvariant()))
            .Order(StringComparer.Ordinal)];
        return paths.Count > 0 ? paths : throw new LabelMaskException($"Image folder '{folder}' holds no images ({string.Join(", ", ImageExtensions)}).");
    }

    private static Raster Decode(string path)
    {
        try
        {
            return ImageCodec.Decode(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is IOException or ImageCodecException or UnauthorizedAccessException)
        {
            throw new LabelMaskException($"Cannot read image '{path}': {e.Message}", e);
        }
    }
}
