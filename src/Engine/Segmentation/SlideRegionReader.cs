using System.Globalization;
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
    /// <exception cref="SlideException">As <see cref="Plan"/>.</exception>
    public static (Raster Image, SegmentationPlacement Placement) Read(Slide slide, double slideMpp, long x, long y, long width, long height, double targetMpp)
    {
        (int outWidth, int outHeight) = Plan(slide, slideMpp, x, y, width, height, targetMpp);
        return (ReadToSize(slide, x, y, width, height, outWidth, outHeight), new SegmentationPlacement(x, y, (double)width / outWidth, (double)height / outHeight, slideMpp));
    }

    /// <summary>
    /// The size in pixels that <see cref="Read"/> makes of the rectangle, checked before anything is read (callers report
    /// it first: a region read at a finer resolution than the slide's is enlarged, and its time grows with its pixels).
    /// </summary>
    /// <exception cref="SlideException"><see cref="SlideErrorKind.InvalidRequest"/> for a rectangle outside the slide or empty, or a resolution that is not positive; <see cref="SlideErrorKind.TooLarge"/> past <see cref="MaxOutputPixels"/> at the target resolution, with the numbers.</exception>
    public static (int Width, int Height) Plan(Slide slide, double slideMpp, long x, long y, long width, long height, double targetMpp)
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
            throw new SlideException(SlideErrorKind.TooLarge, string.Create(CultureInfo.InvariantCulture,
                $"The region {width}x{height} (level 0 at {slideMpp:0.###} µm/px) read at {targetMpp:0.###} µm/px is {outWidth}x{outHeight} = {(long)outWidth * outHeight:N0} pixels, more than the {MaxOutputPixels:N0} ({Math.Sqrt(MaxOutputPixels):0}²) segmented at once; ask for a smaller region (at most about {Math.Sqrt(MaxOutputPixels) * downsample:0}x{Math.Sqrt(MaxOutputPixels) * downsample:0} level-0 pixels at this resolution) or a coarser resolution (CLI: --region, --target-mpp; gRPC: slide_region.region, target_mpp)."));
        }

        return (outWidth, outHeight);
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
