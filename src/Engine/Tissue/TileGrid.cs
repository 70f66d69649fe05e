using System.Globalization;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;

namespace SlidePlugin.Engine.Tissue;

/// <summary>How to cut a slide into tiles.</summary>
public sealed record TileGridOptions
{
    /// <summary>Tile edge in pixels at the target resolution.</summary>
    public int TileSize { get; init; } = 256;

    /// <summary>Pixels (at the target resolution) shared by neighbouring tiles; the stride is TileSize - Overlap.</summary>
    public int Overlap { get; init; }

    /// <summary>Target resolution in µm per pixel; give this or <see cref="Magnification"/>.</summary>
    public double? TargetMpp { get; init; }

    /// <summary>Target objective magnification (e.g. 20); resolved through the slide's objective power, or 10 µm / magnification when it has none.</summary>
    public double? Magnification { get; init; }

    /// <summary>Tiles with a smaller tissue fraction are left out (0 keeps every tile; needs a tissue mask otherwise).</summary>
    public double MinTissueFraction { get; init; } = 0.5;

    /// <summary>Only tiles wholly inside this level-0 rectangle; null for the whole slide.</summary>
    public SlideBounds? RegionOfInterest { get; init; }
}

/// <summary>One tile: its grid position, its level-0 rectangle, and how much of it is tissue.</summary>
public sealed record Tile(int Column, int Row, long X, long Y, long Width, long Height, double TissueFraction);

/// <summary>
/// A grid of square tiles at a target resolution, addressed by level-0 coordinates. Only whole tiles
/// are made (as CLAM and WSInfer do): columns = floor((extent - tile) / stride) + 1 along each axis of
/// the region. Reading picks the pyramid level just finer than the target and resamples when no level
/// matches it.
/// </summary>
public sealed record TileGrid(
    double TargetMpp,
    double Level0TileSize,
    double Level0Stride,
    int Columns,
    int Rows,
    int TileSize,
    int ReadLevel,
    IReadOnlyList<Tile> Tiles)
{
    /// <summary>The largest tile edge, in pixels at the target resolution.</summary>
    public const int MaxTileSize = 4096;

    /// <summary>How much finer than the slide's own resolution a grid may be (each tile enlarged at most this much).</summary>
    public const double MaxEnlargement = 16;

    /// <summary>
    /// The most grid cells (columns x rows) one grid may have: 32 px tiles at 0.5 µm/px on a 200,000 x 100,000 px scan at
    /// 0.25 µm/px make 4.9 million; the tile list of a full grid this size holds about 700 MB.
    /// </summary>
    public const long MaxCells = 1L << 23;

    /// <summary>
    /// The one way a slide is tiled for streaming, analysis, training and the <c>tiles</c> verb: the limits checked
    /// first (an absurd grid costs nothing), then tissue detected, then the grid built over it.
    /// </summary>
    /// <param name="slide">The slide.</param>
    /// <param name="slideMpp">Its level-0 µm per pixel.</param>
    /// <param name="options">The grid.</param>
    /// <param name="tissueOptions">Tissue detection's parameters; null: the defaults.</param>
    /// <param name="detectTissue">Whether to detect tissue when the options keep every tile (min tissue 0): for fractions and outlines.</param>
    /// <param name="cancellationToken">Stops building the grid.</param>
    /// <returns>The grid and the tissue it was built over (null when not detected).</returns>
    /// <exception cref="SlideException">As <see cref="Build"/>.</exception>
    public static (TileGrid Grid, TissueMask? Tissue) OverTissue(Slide slide, double slideMpp, TileGridOptions options,
        TissueDetectionOptions? tissueOptions = null, bool detectTissue = true, CancellationToken cancellationToken = default)
    {
        CheckLimits(slide, slideMpp, options);
        TissueMask? tissue = detectTissue || options.MinTissueFraction > 0 ? TissueDetector.Detect(slide, slideMpp, tissueOptions) : null;
        return (Build(slide, slideMpp, options, tissue, cancellationToken), tissue);
    }

    /// <summary>Builds the grid for <paramref name="slide"/> at level-0 resolution <paramref name="slideMpp"/>.</summary>
    /// <exception cref="ArgumentException">Options that cannot make a grid (no target, overlap not below tile size, ...).</exception>
    /// <exception cref="SlideException">
    /// <see cref="SlideErrorKind.InvalidRequest"/> for a tile larger than <see cref="MaxTileSize"/> or a target more than
    /// <see cref="MaxEnlargement"/> times finer than the slide; <see cref="SlideErrorKind.TooLarge"/> for a grid of more
    /// than <see cref="MaxCells"/> cells. Both are checked before anything is allocated.
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired while the grid was built.</exception>
    public static TileGrid Build(Slide slide, double slideMpp, TileGridOptions options, TissueMask? tissue = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(slideMpp);
        (double targetMpp, double tileL0, double strideL0, SlideBounds region) = Checked(slide, slideMpp, options);
        if (options.MinTissueFraction > 0 && tissue is null)
        {
            throw new ArgumentException("A minimum tissue fraction needs a tissue mask (or set it to 0).", nameof(tissue));
        }

        int columns = (int)CountOf(region.Width, tileL0, strideL0);
        int rows = (int)CountOf(region.Height, tileL0, strideL0);
        long size = (long)Math.Round(tileL0);
        var tiles = new List<Tile>();
        for (int row = 0; row < rows; row++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            for (int column = 0; column < columns; column++)
            {
                long x = region.X + (long)Math.Round(column * strideL0);
                long y = region.Y + (long)Math.Round(row * strideL0);
                double fraction = tissue?.TissueFractionOf(x, y, size, size) ?? 1.0;
                if (fraction >= options.MinTissueFraction)
                {
                    tiles.Add(new Tile(column, row, x, y, size, size, fraction));
                }
            }
        }

        var grid = new TileGrid(targetMpp, tileL0, strideL0, columns, rows, options.TileSize, ReadLevelFor(slide, slideMpp, options), tiles);
        if (grid.ResolutionWarning is { } warning)
        {
            TissueLog.Upsampled(EngineLog.For("SlidePlugin.Tissue"), Path.GetFileName(slide.Path), warning);
        }

        return grid;
    }

    /// <summary>
    /// Checks the limits <see cref="Build"/> enforces (tile size, enlargement, cell count) without building: services call
    /// it before tissue detection, so that an absurd request costs nothing.
    /// </summary>
    /// <exception cref="SlideException">As <see cref="Build"/>.</exception>
    public static void CheckLimits(Slide slide, double slideMpp, TileGridOptions options)
    {
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(slideMpp);
        _ = Checked(slide, slideMpp, options);
    }

    private static (double TargetMpp, double TileL0, double StrideL0, SlideBounds Region) Checked(Slide slide, double slideMpp, TileGridOptions options)
    {
        if (options.TileSize < 1 || options.Overlap < 0 || options.Overlap >= options.TileSize)
        {
            throw new ArgumentException($"Tile size {options.TileSize} with overlap {options.Overlap}: the overlap must be at least 0 and below the tile size.", nameof(options));
        }

        if (options.TileSize > MaxTileSize)
        {
            throw new SlideException(SlideErrorKind.InvalidRequest, $"Tile size {options.TileSize} px is larger than the limit of {MaxTileSize} px.");
        }

        double targetMpp = TargetMppOf(slide, slideMpp, options);
        double scale = targetMpp / slideMpp; // level-0 pixels per target pixel
        if (scale < 1 / MaxEnlargement)
        {
            throw new SlideException(SlideErrorKind.InvalidRequest, string.Create(CultureInfo.InvariantCulture,
                $"Target {targetMpp:G4} µm/px is {1 / scale:G3}x finer than the slide's {slideMpp:G4} µm/px; at most {MaxEnlargement:0}x is allowed (the scan holds no finer detail)."));
        }

        double tileL0 = options.TileSize * scale;
        double strideL0 = (options.TileSize - options.Overlap) * scale;
        SlideBounds region = options.RegionOfInterest ?? new SlideBounds(0, 0, slide.Dimensions.Width, slide.Dimensions.Height);
        double cells = CountOf(region.Width, tileL0, strideL0) * CountOf(region.Height, tileL0, strideL0);
        if (cells > MaxCells)
        {
            throw new SlideException(SlideErrorKind.TooLarge, string.Create(CultureInfo.InvariantCulture,
                $"A grid of {options.TileSize} px tiles at {targetMpp:G4} µm/px on '{Path.GetFileName(slide.Path)}' has {cells:0} cells; the limit is {MaxCells}. Use larger tiles, a coarser resolution or a region of interest."));
        }

        return (targetMpp, tileL0, strideL0, region);
    }

    /// <summary>
    /// Set when the target resolution is finer than the slide's: tiles are then enlarged from fewer scanned pixels and
    /// hold no more detail than the scan (a model trained at 0.25 µm/px sees a blurred 0.5 µm/px slide). Null otherwise.
    /// </summary>
    public string? ResolutionWarning
    {
        get
        {
            double enlargement = TileSize / Level0TileSize;
            if (enlargement <= 1 + 1e-6)
            {
                return null;
            }

            double slideMpp = TargetMpp * enlargement;
            return string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{TargetMpp:0.###} µm/px is finer than the slide's {slideMpp:0.###} µm/px: each {TileSize} px tile is enlarged {enlargement:0.##}x from {Level0TileSize:0.#} px of the scan and holds no more detail than it.");
        }
    }

    /// <summary>The level a grid built with <paramref name="options"/> reads its tiles from (<see cref="ReadLevel"/>), known before tissue detection.</summary>
    public static int ReadLevelFor(Slide slide, double slideMpp, TileGridOptions options)
    {
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(slideMpp);
        return slide.GetBestLevelForDownsample(TargetMppOf(slide, slideMpp, options) / slideMpp);
    }

    /// <summary>Reads <paramref name="tile"/> as a TileSize x TileSize RGB raster at the target resolution, composited on the slide's background colour.</summary>
    public Raster Read(Slide slide, Tile tile)
    {
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(tile);
        return slide.ReadRegionScaled(tile.X, tile.Y, tile.Width, tile.Height, ReadLevel, TileSize, TileSize);
    }

    /// <summary>Tiles along one axis, as a double so that an absurd request is measured before it is cast.</summary>
    private static double CountOf(long extent, double tile, double stride) =>
        extent < tile ? 0 : Math.Floor(((extent - tile) / stride) + 1e-9) + 1;

    private static double TargetMppOf(Slide slide, double slideMpp, TileGridOptions options)
    {
        if (options.TargetMpp is { } mpp)
        {
            return mpp > 0 ? mpp : throw new ArgumentException($"Target mpp must be positive, not {mpp}.", nameof(options));
        }

        if (options.Magnification is { } magnification && magnification > 0)
        {
            // With the slide's objective power, magnification is relative to the scan; without it, assume 10 µm / magnification.
            return SlideProperties.Number(slide.Properties, SlideProperties.ObjectivePower) is { } power && power > 0
                ? slideMpp * power / magnification
                : SlideResolution.MicronsTimesPower / magnification;
        }

        throw new ArgumentException("Give a target resolution: TargetMpp (µm per pixel) or a positive Magnification.", nameof(options));
    }
}
