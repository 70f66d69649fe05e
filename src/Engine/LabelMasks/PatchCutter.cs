using System.Globalization;
using System.Text;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.IO;

namespace SlidePlugin.Engine.LabelMasks;

/// <summary>How an image and its mask are cut.</summary>
public sealed record PatchCutOptions
{
    /// <summary>Patch edge in pixels.</summary>
    public int Size { get; init; } = 256;

    /// <summary>Step between patches.</summary>
    public int Stride { get; init; } = 128;

    /// <summary>Patches whose annotated (not <see cref="UnannotatedCode"/>) fraction is below this are skipped.</summary>
    public double MinValidFraction { get; init; } = 0.5;

    /// <summary>The code of "not annotated" pixels (BCSS <c>outside_roi</c> = 0).</summary>
    public byte UnannotatedCode { get; init; }
}

/// <summary>One patch written: its name, position (x = column, y = row of its top-left pixel), valid fraction and per-code counts.</summary>
public sealed record MaskPatch(string Name, int X, int Y, int Size, double ValidFraction, long[] Counts);

/// <summary>
/// Cuts an image and its label mask into aligned patches named <c>&lt;id&gt;_&lt;x&gt;_&lt;y&gt;.png</c> (images in
/// <c>images/</c>, masks in <c>masks/</c>, masks as single-band PNG that keeps the codes). The last row and column
/// are aligned to the border instead of dropped, so every pixel is covered. Patches are written in parallel, each
/// atomically; a patch already on disk is not written again, so a stopped run resumes.
/// </summary>
public static class PatchCutter
{
    /// <summary>Start positions along one axis: 0, stride, 2·stride, ... and extent − size last, so the border is covered.</summary>
    public static IReadOnlyList<int> Positions(int extent, int size, int stride)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        if (extent < size)
        {
            return [];
        }

        var positions = new List<int>();
        for (int p = 0; p + size <= extent; p += stride)
        {
            positions.Add(p);
        }

        if (positions[^1] != extent - size)
        {
            positions.Add(extent - size);
        }

        return positions;
    }

    /// <summary>
    /// The patches of <paramref name="image"/> and <paramref name="mask"/> that have enough annotated pixels, in
    /// row-major order, with their per-code counts (nothing is cropped or written yet).
    /// </summary>
    /// <exception cref="LabelMaskException">The mask's size differs from the image's, or the image is smaller than a patch.</exception>
    public static IReadOnlyList<MaskPatch> Plan(string id, Raster image, LabelMask mask, PatchCutOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(mask);
        options ??= new PatchCutOptions();
        if (image.Width != mask.Width || image.Height != mask.Height)
        {
            throw new LabelMaskException($"'{id}': the mask is {mask.Width}x{mask.Height} but the image is {image.Width}x{image.Height}; they must match pixel for pixel.");
        }

        if (image.Width < options.Size || image.Height < options.Size)
        {
            throw new LabelMaskException($"'{id}': the image is {image.Width}x{image.Height}, smaller than a {options.Size} px patch.");
        }

        return [.. Candidates(id, mask, options).Where(p => p.ValidFraction >= options.MinValidFraction)];
    }

    /// <summary>
    /// The largest annotated fraction of any patch of <paramref name="mask"/> (0 when it is smaller than a patch): when
    /// no patch reaches <see cref="PatchCutOptions.MinValidFraction"/>, the value that would keep at least one.
    /// </summary>
    public static double LargestValidFraction(LabelMask mask, PatchCutOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(mask);
        options ??= new PatchCutOptions();
        return mask.Width < options.Size || mask.Height < options.Size ? 0 : Candidates("mask", mask, options).Max(p => p.ValidFraction);
    }

    /// <summary>Every patch position of <paramref name="mask"/>, row-major, with its annotated fraction and per-code counts.</summary>
    private static List<MaskPatch> Candidates(string id, LabelMask mask, PatchCutOptions options)
    {
        (int X, int Y)[] origins = [.. from y in Positions(mask.Height, options.Size, options.Stride) from x in Positions(mask.Width, options.Size, options.Stride) select (x, y)];
        Raster maskImage = mask.ToRaster();
        var patches = new MaskPatch[origins.Length];
        Parallel.For(0, origins.Length, i =>
        {
            (int x, int y) = origins[i];
            long[] counts = ClassStatistics.Histogram(maskImage.Crop(x, y, options.Size, options.Size).Pixels);
            double valid = 1 - ((double)counts[options.UnannotatedCode] / (options.Size * options.Size));
            patches[i] = new MaskPatch(string.Create(CultureInfo.InvariantCulture, $"{id}_{x}_{y}.png"), x, y, options.Size, valid, counts);
        });
        return [.. patches];
    }

    /// <summary>The image and mask pixels of <paramref name="patch"/>.</summary>
    public static (Raster Image, Raster Mask) Crop(Raster image, LabelMask mask, MaskPatch patch)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(mask);
        ArgumentNullException.ThrowIfNull(patch);
        return (image.Crop(patch.X, patch.Y, patch.Size, patch.Size), mask.ToRaster().Crop(patch.X, patch.Y, patch.Size, patch.Size));
    }

    /// <summary>Cuts <paramref name="image"/> and <paramref name="mask"/> into <paramref name="outputFolder"/>; returns the patches kept, in row-major order.</summary>
    /// <exception cref="LabelMaskException">As <see cref="Plan"/>.</exception>
    public static IReadOnlyList<MaskPatch> Cut(string id, Raster image, LabelMask mask, string outputFolder, PatchCutOptions? options = null)
    {
        IReadOnlyList<MaskPatch> patches = Plan(id, image, mask, options);
        string images = Path.Combine(outputFolder, "images"), masks = Path.Combine(outputFolder, "masks");
        Directory.CreateDirectory(images);
        Directory.CreateDirectory(masks);
        Parallel.ForEach(patches, patch =>
        {
            string imagePath = Path.Combine(images, patch.Name), maskPath = Path.Combine(masks, patch.Name);
            if (!File.Exists(maskPath))
            {
                (Raster imagePatch, Raster maskPatch) = Crop(image, mask, patch);
                AtomicFile.WriteAllBytes(imagePath, ImageCodec.EncodePng(imagePatch));
                AtomicFile.WriteAllBytes(maskPath, ImageCodec.EncodePng(maskPatch)); // written last: its presence means the pair is complete
            }
        });
        return patches;
    }

    /// <summary>The index of patches: <c>name,x,y,size,valid_fraction,&lt;class&gt;_pixels...</c>.</summary>
    public static string IndexCsv(IEnumerable<MaskPatch> patches, LabelTable table)
    {
        ArgumentNullException.ThrowIfNull(patches);
        ArgumentNullException.ThrowIfNull(table);
        var csv = new StringBuilder("name,x,y,size,valid_fraction");
        foreach (LabelClass c in table.Classes)
        {
            csv.Append(',').Append(c.Name).Append("_pixels");
        }

        csv.Append('\n');
        foreach (MaskPatch p in patches)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{p.Name},{p.X},{p.Y},{p.Size},{p.ValidFraction:0.######}");
            foreach (LabelClass c in table.Classes)
            {
                csv.Append(',').Append(p.Counts[c.Code].ToString(CultureInfo.InvariantCulture));
            }

            csv.Append('\n');
        }

        return csv.ToString();
    }
}
