namespace SlidePlugin.Engine.Tissue;

/// <summary>
/// Settings of <see cref="TissueDetector"/>, after CLAM's segmentation (saturation, median blur, threshold,
/// close, area filters) with two additions for what CLAM lets through: pen ink and out-of-focus blobs.
/// Areas are in µm² so that one setting means the same tissue at any magnification.
/// </summary>
public sealed record TissueDetectionOptions
{
    /// <summary>Largest longest side of the image segmentation runs on; the slide is read at the level and scale that give it.</summary>
    public int SegmentationSize { get; init; } = 2048;

    /// <summary>
    /// Finest resolution segmentation runs at, in µm per pixel: a small slide is not segmented finer than this.
    /// Tissue outlines need no more (CLAM segments at about 64x downsample, 16 µm/px at 40x), and a view at the
    /// size limit of a 3k-pixel slide costs 30x the pixels for the same tiles give or take a boundary row.
    /// </summary>
    public double SegmentationMpp { get; init; } = 2.0;

    /// <summary>Median blur kernel (odd), applied to saturation before thresholding (CLAM: mthresh 7).</summary>
    public int MedianKernel { get; init; } = 7;

    /// <summary>
    /// Saturation above which a pixel is stained (0-255). Fixed by default, as CLAM's default (sthresh) is:
    /// Otsu splits pale from dark stain when the image is mostly tissue. Null picks one per image by Otsu's method.
    /// </summary>
    public int? SaturationThreshold { get; init; } = 20;

    /// <summary>With Otsu, the threshold is never below this: an empty slide's noise must not become tissue.</summary>
    public int MinSaturationThreshold { get; init; } = 20;

    /// <summary>Pixels at least this saturated look like pen ink; H&amp;E reaches it only in a few dark nuclei.</summary>
    public int PenSaturation { get; init; } = 150;

    /// <summary>A piece with at least this fraction of ink-saturated pixels is a pen mark, not tissue.</summary>
    public double MaxInkFraction { get; init; } = 0.5;

    /// <summary>Square kernel of the morphological close that joins nearby tissue (CLAM: close 4).</summary>
    public int CloseKernel { get; init; } = 4;

    /// <summary>Tissue pieces smaller than this many µm² are dropped (dust, debris).</summary>
    public double MinTissueAreaSquareMicrons { get; init; } = 2_000;

    /// <summary>Holes smaller than this many µm² are filled; larger ones (lumens, tears) stay holes.</summary>
    public double MaxFilledHoleAreaSquareMicrons { get; init; } = 4_000;

    /// <summary>
    /// A piece whose mean grey gradient (levels a pixel at the segmentation scale) is below this is
    /// out of focus or ink, not tissue; 0 turns the check off.
    /// </summary>
    public double MinTexture { get; init; } = 2.0;
}
