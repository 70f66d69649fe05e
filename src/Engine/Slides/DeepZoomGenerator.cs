using System.Globalization;
using System.Security;
using SlidePlugin.Engine.Imaging;

namespace SlidePlugin.Engine.Slides;

/// <summary>Where a Deep Zoom tile comes from: the <see cref="Slide.ReadRegion"/> arguments and the tile's final size.</summary>
/// <param name="X">Level-0 x of the region to read.</param>
/// <param name="Y">Level-0 y of the region to read.</param>
/// <param name="SlideLevel">The slide level read.</param>
/// <param name="ReadWidth">Width read, in <paramref name="SlideLevel"/> pixels.</param>
/// <param name="ReadHeight">Height read, in <paramref name="SlideLevel"/> pixels.</param>
/// <param name="TileWidth">Width of the finished tile (overlap included).</param>
/// <param name="TileHeight">Height of the finished tile (overlap included).</param>
public readonly record struct DeepZoomTileSource(long X, long Y, int SlideLevel, int ReadWidth, int ReadHeight, int TileWidth, int TileHeight);

/// <summary>
/// Deep Zoom (OpenSeadragon) tiles of a slide with the semantics of openslide-python's
/// <c>DeepZoomGenerator</c>: the same level sizes, tile grid, overlap on interior edges only, slide level
/// choice, read coordinates and <c>limit_bounds</c> handling, tiles composited on the slide's background
/// colour. Only the final resampling differs (libvips Lanczos-3 instead of PIL's), so tiles read at a
/// slide level's own scale are pixel-identical and scaled ones agree to resampling noise. Tiles are always
/// exactly the size <see cref="GetTileSource"/> announces (openslide-python's PIL thumbnail keeps the read
/// region's aspect ratio and can return a pixel less). Tiles coarser than the slide's <see cref="SlideOverview"/>, where
/// the slide has no level near their scale, are cut from that overview: a low-zoom view then costs one read of the
/// slide, not one per tile.
/// </summary>
public sealed class DeepZoomGenerator
{
    /// <summary>The Deep Zoom XML namespace of a .dzi file.</summary>
    public const string DziNamespace = "http://schemas.microsoft.com/deepzoom/2008";

    /// <summary>Largest tile edge accepted (tile size plus both overlaps), so that one tile always fits a message.</summary>
    public const int MaxTileEdge = 4096;

    private readonly Slide _slide;
    private readonly (long Width, long Height) _l0Offset;
    private readonly (long Width, long Height)[] _slideLevelDimensions; // active area of each slide level
    private readonly (long Width, long Height)[] _zDimensions;          // each Deep Zoom level, coarsest first
    private readonly (long Columns, long Rows)[] _tileDimensions;
    private readonly int[] _slideLevelOfZ;                              // slide level read for each Deep Zoom level
    private readonly double[] _slideToZDownsample;                      // remaining downsample after that level
    private readonly bool[] _fromOverview;                              // whether that level's tiles are cut from the overview

    /// <summary>Prepares tiles of <paramref name="slide"/> (which must stay open while tiles are read).</summary>
    /// <param name="slide">The slide.</param>
    /// <param name="tileSize">Tile edge without overlap (openslide-python default 254).</param>
    /// <param name="overlap">Pixels added on each side that has a neighbour (default 1).</param>
    /// <param name="limitBounds">Show only the non-empty region (<c>openslide.bounds-*</c>) when the slide has one.</param>
    /// <exception cref="ArgumentException">A tile size below 1, a negative overlap, or tiles past <see cref="MaxTileEdge"/>.</exception>
    public DeepZoomGenerator(Slide slide, int tileSize = 254, int overlap = 1, bool limitBounds = false)
    {
        ArgumentNullException.ThrowIfNull(slide);
        if (tileSize < 1 || overlap < 0 || tileSize + (2L * overlap) > MaxTileEdge)
        {
            throw new ArgumentException($"Deep Zoom tile size {tileSize} with overlap {overlap}: the tile size must be at least 1, the overlap at least 0, and tile size + 2 x overlap at most {MaxTileEdge}.");
        }

        _slide = slide;
        TileSize = tileSize;
        Overlap = overlap;
        LimitBounds = limitBounds;

        IReadOnlyDictionary<string, string> p = slide.Properties;
        (long w0, long h0) = slide.Dimensions;
        if (limitBounds)
        {
            _l0Offset = (SlideProperties.Long(p, "openslide.bounds-x") ?? 0, SlideProperties.Long(p, "openslide.bounds-y") ?? 0);
            double scaleX = (double)(SlideProperties.Long(p, "openslide.bounds-width") ?? w0) / w0;
            double scaleY = (double)(SlideProperties.Long(p, "openslide.bounds-height") ?? h0) / h0;
            _slideLevelDimensions = slide.LevelDimensions
                .Select(d => ((long)Math.Ceiling(d.Width * scaleX), (long)Math.Ceiling(d.Height * scaleY)))
                .ToArray();
        }
        else
        {
            _l0Offset = (0, 0);
            _slideLevelDimensions = slide.LevelDimensions.ToArray();
        }

        // Halve (rounding up) until 1x1; Deep Zoom level 0 is the 1x1 one.
        var zSizes = new List<(long Width, long Height)> { _slideLevelDimensions[0] };
        for ((long w, long h) = _slideLevelDimensions[0]; w > 1 || h > 1;)
        {
            (w, h) = (Math.Max(1, (w + 1) / 2), Math.Max(1, (h + 1) / 2));
            zSizes.Add((w, h));
        }

        zSizes.Reverse();
        _zDimensions = [.. zSizes];
        _tileDimensions = _zDimensions.Select(z => (CeilDiv(z.Width, tileSize), CeilDiv(z.Height, tileSize))).ToArray();

        int levels = _zDimensions.Length;
        _slideLevelOfZ = new int[levels];
        _slideToZDownsample = new double[levels];
        _fromOverview = new bool[levels];
        double? overview = slide.OverviewDownsample;
        for (int z = 0; z < levels; z++)
        {
            double l0Downsample = Math.Pow(2, levels - z - 1);
            _slideLevelOfZ[z] = slide.GetBestLevelForDownsample(l0Downsample);
            _slideToZDownsample[z] = l0Downsample / slide.LevelDownsamples[_slideLevelOfZ[z]];
            // Only where the slide level would be finer than the overview: a level at the tile's own scale is read as is.
            _fromOverview[z] = l0Downsample >= overview && slide.LevelDownsamples[_slideLevelOfZ[z]] < overview;
        }

    }

    /// <summary>Tile edge without overlap.</summary>
    public int TileSize { get; }

    /// <summary>Overlap added on interior edges.</summary>
    public int Overlap { get; }

    /// <summary>Whether only the slide's bounds are shown.</summary>
    public bool LimitBounds { get; }

    /// <summary>Number of Deep Zoom levels (level 0 is 1x1, the last is full resolution).</summary>
    public int LevelCount => _zDimensions.Length;

    /// <summary>Pixel size of each Deep Zoom level.</summary>
    public IReadOnlyList<(long Width, long Height)> LevelDimensions => _zDimensions;

    /// <summary>Tile columns and rows of each Deep Zoom level.</summary>
    public IReadOnlyList<(long Columns, long Rows)> LevelTiles => _tileDimensions;

    /// <summary>Total number of tiles over all levels.</summary>
    public long TileCount => _tileDimensions.Sum(t => t.Columns * t.Rows);

    /// <summary>The .dzi XML for tiles in <paramref name="format"/> (<c>jpeg</c> or <c>png</c>).</summary>
    public string GetDzi(string format)
    {
        ArgumentException.ThrowIfNullOrEmpty(format);
        (long width, long height) = _zDimensions[^1];
        return string.Create(CultureInfo.InvariantCulture,
            $"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Image xmlns=\"{DziNamespace}\" TileSize=\"{TileSize}\" Overlap=\"{Overlap}\" Format=\"{SecurityElement.Escape(format)}\"><Size Width=\"{width}\" Height=\"{height}\" /></Image>\n");
    }

    /// <summary>Where tile (<paramref name="column"/>, <paramref name="row"/>) of Deep Zoom <paramref name="level"/> is read from.</summary>
    /// <exception cref="SlideException"><see cref="SlideErrorKind.OutOfRange"/> for a level or address out of range; the message gives the ranges.</exception>
    public DeepZoomTileSource GetTileSource(int level, long column, long row)
    {
        if (level < 0 || level >= LevelCount)
        {
            throw new SlideException(SlideErrorKind.OutOfRange, $"Deep Zoom level {level} does not exist: levels are 0..{LevelCount - 1}.");
        }

        (long columns, long rows) = _tileDimensions[level];
        if (column < 0 || column >= columns || row < 0 || row >= rows)
        {
            throw new SlideException(SlideErrorKind.OutOfRange, $"Deep Zoom tile ({column}, {row}) does not exist at level {level}: it has {columns} x {rows} tiles.");
        }

        int slideLevel = _slideLevelOfZ[level];
        (long zWidth, long zHeight) = _zDimensions[level];
        (long lWidth, long lHeight) = _slideLevelDimensions[slideLevel];
        double lPerZ = _slideToZDownsample[level];
        double l0PerL = _slide.LevelDownsamples[slideLevel];

        // Per axis, as openslide-python's _get_tile_info: overlap only towards neighbours, location rounded
        // down, size rounded up and clipped to the level's active area.
        (long x, int readWidth, int tileWidth) = Axis(column, columns, zWidth, lWidth, _l0Offset.Width);
        (long y, int readHeight, int tileHeight) = Axis(row, rows, zHeight, lHeight, _l0Offset.Height);
        return new DeepZoomTileSource(x, y, slideLevel, readWidth, readHeight, tileWidth, tileHeight);

        (long L0, int Read, int Tile) Axis(long t, long tiles, long zLimit, long lLimit, long l0Offset)
        {
            long overlapBefore = t != 0 ? Overlap : 0;
            long overlapAfter = t != tiles - 1 ? Overlap : 0;
            long tile = Math.Min(TileSize, zLimit - (TileSize * t)) + overlapBefore + overlapAfter;
            double l = lPerZ * ((TileSize * t) - overlapBefore);
            long l0 = (long)((l0PerL * l) + l0Offset);
            long read = (long)Math.Min(Math.Ceiling(lPerZ * tile), lLimit - Math.Ceiling(l));
            return (l0, (int)read, (int)tile);
        }
    }

    /// <summary>
    /// The tile as RGB, composited on the background colour and scaled to its Deep Zoom size.
    /// </summary>
    /// <exception cref="SlideException">An address out of range (OutOfRange) or a failed read (ReadFailed).</exception>
    public Raster GetTile(int level, long column, long row)
    {
        DeepZoomTileSource source = GetTileSource(level, column, row);
        if (_fromOverview[level] && _slide.GetOverview() is { } overview)
        {
            double l0PerRead = _slide.LevelDownsamples[source.SlideLevel];
            return overview.Read(source.X, source.Y, source.ReadWidth * l0PerRead, source.ReadHeight * l0PerRead, source.TileWidth, source.TileHeight);
        }

        Raster tile = _slide.ReadRegionRgb(source.X, source.Y, source.SlideLevel, source.ReadWidth, source.ReadHeight);
        return tile.Width == source.TileWidth && tile.Height == source.TileHeight
            ? tile
            : ImageCodec.Resize(tile, source.TileWidth, source.TileHeight);
    }

    private static long CeilDiv(long value, long divisor) => (value + divisor - 1) / divisor;
}
