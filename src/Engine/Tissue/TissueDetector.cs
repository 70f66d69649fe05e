using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;

namespace SlidePlugin.Engine.Tissue;

/// <summary>
/// Finds tissue the way CLAM does, on a low-resolution view of the slide: HSV saturation, median blur,
/// Otsu (or fixed) threshold, morphological close, then area filters in µm² for pieces and holes.
/// Two additions keep pen marks out: a piece most of whose pixels are saturated beyond any stain is ink,
/// and a piece without texture (out of focus, ink smears) is not tissue.
/// </summary>
public static class TissueDetector
{
    /// <summary>
    /// Detects tissue on a whole slide; <paramref name="mpp"/> is its level-0 µm per pixel. The view is the coarser of
    /// <see cref="TissueDetectionOptions.SegmentationSize"/> on its longest side and <see cref="TissueDetectionOptions.SegmentationMpp"/>.
    /// </summary>
    /// <exception cref="SlideException">InvalidRequest when the slide has no level small enough to read whole for segmentation.</exception>
    public static TissueMask Detect(Slide slide, double mpp, TissueDetectionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(mpp);
        options ??= new TissueDetectionOptions();
        (long width0, long height0) = slide.Dimensions;
        // Linear is area-correct when shrinking and half the cost of Lanczos; a mask needs no sharper view.
        Raster view = slide.ReadDownsampled(ViewDownsample(slide, mpp, options), ResizeKernel.Linear);
        double downsampleX = (double)width0 / view.Width, downsampleY = (double)height0 / view.Height;
        return DetectCore(view, mpp * Math.Sqrt(downsampleX * downsampleY), downsampleX, downsampleY, options);
    }

    /// <summary>The level <see cref="Detect(Slide, double, TissueDetectionOptions?)"/> reads whole for its view.</summary>
    public static int ViewLevel(Slide slide, double mpp, TissueDetectionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(mpp);
        return slide.GetBestLevelForDownsample(ViewDownsample(slide, mpp, options ?? new TissueDetectionOptions()));
    }

    /// <summary>The view's downsample: the coarser of the size limit on the longest side and the segmentation resolution.</summary>
    private static double ViewDownsample(Slide slide, double mpp, TissueDetectionOptions options)
    {
        (long width0, long height0) = slide.Dimensions;
        return Math.Max(1.0, Math.Max(Math.Max(width0, height0) / (double)options.SegmentationSize, options.SegmentationMpp / mpp));
    }

    /// <summary>
    /// Detects tissue on an image whose pixels are <paramref name="mpp"/> µm wide and
    /// <paramref name="downsample"/> level-0 pixels wide (1 for a level-0 image).
    /// </summary>
    public static TissueMask Detect(Raster image, double mpp, double downsample = 1, TissueDetectionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(mpp);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(downsample);
        return DetectCore(image, mpp, downsample, downsample, options);
    }

    private static TissueMask DetectCore(Raster image, double mpp, double downsampleX, double downsampleY, TissueDetectionOptions? options)
    {
        if (image.Bands < 3)
        {
            throw new ArgumentException("Tissue detection needs a colour (RGB or RGBA) image.", nameof(image));
        }

        if (mpp <= 0 || downsampleX <= 0 || downsampleY <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(mpp), "Resolution and downsample must be positive.");
        }

        options ??= new TissueDetectionOptions();
        int width = image.Width, height = image.Height, pixels = width * height;
        byte[] rgb = OverWhite(image);
        byte[] saturation = MaskOperations.Median(MaskOperations.Saturation(rgb, pixels, 3), width, height, options.MedianKernel);
        byte[] grey = MaskOperations.Grey(rgb, pixels, 3);
        int threshold = options.SaturationThreshold ?? Math.Max(MaskOperations.Otsu(saturation), options.MinSaturationThreshold);

        var mask = new byte[pixels];
        for (int i = 0; i < pixels; i++)
        {
            mask[i] = saturation[i] > threshold ? (byte)1 : (byte)0;
        }

        mask = MaskOperations.SquareMorphology(MaskOperations.SquareMorphology(mask, width, height, options.CloseKernel, dilate: true), width, height, options.CloseKernel, dilate: false);

        double pixelArea = mpp * mpp;
        (int[] labels, List<int> sizes, _) = MaskOperations.Components(mask, width, height, 1);
        double[] texture = Texture(grey, labels, width, height, sizes.Count);
        double[] ink = InkFraction(saturation, labels, sizes, options.PenSaturation);
        var keep = new bool[sizes.Count];
        for (int label = 1; label < sizes.Count; label++)
        {
            keep[label] = sizes[label] * pixelArea >= options.MinTissueAreaSquareMicrons
                && texture[label] >= options.MinTexture
                && ink[label] < options.MaxInkFraction;
        }

        for (int i = 0; i < pixels; i++)
        {
            mask[i] = keep[labels[i]] ? (byte)1 : (byte)0;
        }

        // Small enclosed holes become tissue; large ones (lumens, tears) and the outside stay background.
        (int[] holeLabels, List<int> holeSizes, List<bool> holeTouchesBorder) = MaskOperations.Components(mask, width, height, 0);
        for (int i = 0; i < pixels; i++)
        {
            int hole = holeLabels[i];
            if (hole != 0 && !holeTouchesBorder[hole] && holeSizes[hole] * pixelArea < options.MaxFilledHoleAreaSquareMicrons)
            {
                mask[i] = 1;
            }
        }

        return new TissueMask(width, height, mask, downsampleX, downsampleY, threshold, () => Polygons(mask, width, height, downsampleX, downsampleY, pixelArea));
    }

    private static List<TissuePolygon> Polygons(byte[] mask, int width, int height, double downsampleX, double downsampleY, double pixelArea)
    {
        List<PointD> ToLevel0(List<(int X, int Y)> ring) => ring.Select(p => new PointD(p.X * downsampleX, p.Y * downsampleY)).ToList();
        return ContourTracer.Pieces(mask, width, height, 1)
            .Select(piece => new TissuePolygon(ToLevel0(piece.Exterior), piece.Holes.Select(ToLevel0).ToList(), piece.Pixels * pixelArea))
            .OrderByDescending(p => p.AreaSquareMicrons)
            .ToList();
    }

    /// <summary>Mean absolute grey difference to the right and below neighbours, per labelled piece.</summary>
    private static double[] Texture(byte[] grey, int[] labels, int width, int height, int labelCount)
    {
        var sum = new double[labelCount];
        var count = new long[labelCount];
        for (int y = 0; y < height - 1; y++)
        {
            for (int x = 0; x < width - 1; x++)
            {
                int i = (y * width) + x;
                int label = labels[i];
                if (label == 0)
                {
                    continue;
                }

                sum[label] += (Math.Abs(grey[i + 1] - grey[i]) + Math.Abs(grey[i + width] - grey[i])) / 2.0;
                count[label]++;
            }
        }

        var texture = new double[labelCount];
        for (int label = 1; label < labelCount; label++)
        {
            texture[label] = count[label] == 0 ? 0 : sum[label] / count[label];
        }

        return texture;
    }

    /// <summary>Per piece, the fraction of pixels saturated like ink rather than stain.</summary>
    private static double[] InkFraction(byte[] saturation, int[] labels, List<int> sizes, int penSaturation)
    {
        var inked = new long[sizes.Count];
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] != 0 && saturation[i] >= penSaturation)
            {
                inked[labels[i]]++;
            }
        }

        return inked.Select((count, label) => sizes[label] == 0 ? 0 : (double)count / sizes[label]).ToArray();
    }

    /// <summary>RGB over a white background: transparent slide regions are glass, not tissue.</summary>
    private static byte[] OverWhite(Raster image)
    {
        int pixels = image.Width * image.Height;
        var rgb = new byte[pixels * 3];
        for (int i = 0, o = 0; i < pixels; i++, o += image.Bands)
        {
            int alpha = image.Bands == 4 ? image.Pixels[o + 3] : 255;
            for (int c = 0; c < 3; c++)
            {
                rgb[(i * 3) + c] = (byte)(((image.Pixels[o + c] * alpha) + (255 * (255 - alpha)) + 127) / 255);
            }
        }

        return rgb;
    }
}
