using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;

namespace SlidePlugin.Engine.Segmentation;

/// <summary>Reads a level-0 rectangle of a slide as RGB at a target resolution (from the best level, then resized).</summary>
public static class SlideRegionReader
{
    /// <summary>Largest image a region becomes (pixels at the target resolution): 4096 x 4096.</summary>
    public const long MaxOutputPixels = 4096L * 4096;

    /// <summary>
    /// The rectangle (<paramref name="x"/>, <paramref name="y"/>, <paramref name="width"/>, <paramref name="height"/>) in
    /// level-0 pixels of <paramref name="slide"/> (level-0 resolution <paramref name="slideMpp"/>) at
    /// <paramref name="targetMpp"/> µm/px, composited on the slide's background, and where it lies.
    /// </summary>
    /// <exception cref="SlideException"><see cref="SlideErrorKind.InvalidRequest"/> for a rectangle outside the slide or empty; <see cref="SlideErrorKind.TooLarge"/> past <see cref="MaxOutputPixels"/> at the target resolution.</exception>
    public static (Raster Image, SegmentationPlacement Placement) Read(Slide slide, double slideMpp, long x, long y, long width, long height, double targetMpp)
    {
        ArgumentNullException.ThrowIfNull(slide);
        (long slideWidth, long slideHeight) = slide.Dimensions;
        if (width < 1 || height < 1 || x < 0 || y < 0 || x + width > slideWidth || y + height > slideHeight)
        {
            throw new SlideException(SlideErrorKind.InvalidRequest, $"The region {width}x{height} at ({x}, {y}) is not inside the {slideWidth}x{slideHeight} slide.");
        }

        if (!(targetMpp > 0) || !(slideMpp > 0))
        {
            throw new SlideException(SlideErrorKind.InvalidRequest, $"Resolutions must be positive (slide {slideMpp} µm/px, target {targetMpp} µm/px).");
        }

        double downsample = targetMpp / slideMpp;
        int outWidth = (int)Math.Max(1, Math.Min(int.MaxValue, Math.Round(width / downsample)));
        int outHeight = (int)Math.Max(1, Math.Min(int.MaxValue, Math.Round(height / downsample)));
        if ((long)outWidth * outHeight > MaxOutputPixels)
        {
            throw new SlideException(SlideErrorKind.TooLarge,
                $"The region {width}x{height} is {outWidth}x{outHeight} pixels at {targetMpp:0.###} µm/px, more than {MaxOutputPixels} ({Math.Sqrt(MaxOutputPixels):0}²); ask for a smaller region.");
        }

        return (ReadToSize(slide, x, y, width, height, outWidth, outHeight), new SegmentationPlacement(x, y, (double)width / outWidth, (double)height / outHeight, slideMpp));
    }

    /// <summary>
    /// The level-0 rectangle scaled to exactly <paramref name="outWidth"/> x <paramref name="outHeight"/> (e.g. the size of
    /// a label mask drawn over it): read from the best level for the scale as tiles are (<see cref="Slide.ReadRegionScaled"/>).
    /// </summary>
    /// <exception cref="SlideException">A rectangle outside the slide, or a failed read.</exception>
    public static Raster ReadToSize(Slide slide, long x, long y, long width, long height, int outWidth, int outHeight)
    {
        ArgumentNullException.ThrowIfNull(slide);
        (long slideWidth, long slideHeight) = slide.Dimensions;
        if (width < 1 || height < 1 || x < 0 || y < 0 || x + width > slideWidth || y + height > slideHeight || outWidth < 1 || outHeight < 1)
        {
            throw new SlideException(SlideErrorKind.InvalidRequest, $"The region {width}x{height} at ({x}, {y}) is not inside the {slideWidth}x{slideHeight} slide.");
        }

        int level = slide.GetBestLevelForDownsample(Math.Min((double)width / outWidth, (double)height / outHeight));
        return slide.ReadRegionScaled(x, y, width, height, level, outWidth, outHeight);
    }
}
