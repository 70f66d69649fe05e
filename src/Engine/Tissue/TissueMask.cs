namespace SlidePlugin.Engine.Tissue;

/// <summary>A point in level-0 pixel coordinates (x = column, y = row).</summary>
public readonly record struct PointD(double X, double Y);

/// <summary>One piece of tissue as a polygon in level-0 pixels: an exterior ring and its holes (rings closed implicitly).</summary>
public sealed record TissuePolygon(IReadOnlyList<PointD> Exterior, IReadOnlyList<IReadOnlyList<PointD>> Holes, double AreaSquareMicrons);

/// <summary>
/// Where the tissue is: a binary mask at the segmentation scale, and the same as polygons in level-0 pixels.
/// </summary>
public sealed class TissueMask
{
    private readonly Lazy<IReadOnlyList<TissuePolygon>> _polygons;

    /// <summary>A mask with its polygons.</summary>
    /// <param name="width">Mask width.</param>
    /// <param name="height">Mask height.</param>
    /// <param name="mask">1 for tissue, 0 elsewhere, row-major.</param>
    /// <param name="downsampleX">Level-0 pixels a mask pixel spans along x.</param>
    /// <param name="downsampleY">Level-0 pixels a mask pixel spans along y (differs from x only by rounding of the mask size).</param>
    /// <param name="saturationThreshold">The threshold used (Otsu's or the fixed one).</param>
    /// <param name="polygons">The tissue pieces, largest first.</param>
    public TissueMask(int width, int height, byte[] mask, double downsampleX, double downsampleY, int saturationThreshold, IReadOnlyList<TissuePolygon> polygons)
        : this(width, height, mask, downsampleX, downsampleY, saturationThreshold, new Lazy<IReadOnlyList<TissuePolygon>>(polygons))
    {
    }

    /// <summary>A mask whose polygons are traced when first asked for: tiling needs only the mask (tracing took 9-30 ms of a small slide's analysis).</summary>
    internal TissueMask(int width, int height, byte[] mask, double downsampleX, double downsampleY, int saturationThreshold, Func<IReadOnlyList<TissuePolygon>> tracePolygons)
        : this(width, height, mask, downsampleX, downsampleY, saturationThreshold, new Lazy<IReadOnlyList<TissuePolygon>>(tracePolygons))
    {
    }

    private TissueMask(int width, int height, byte[] mask, double downsampleX, double downsampleY, int saturationThreshold, Lazy<IReadOnlyList<TissuePolygon>> polygons)
    {
        ArgumentNullException.ThrowIfNull(mask);
        Width = width;
        Height = height;
        Mask = mask;
        DownsampleX = downsampleX;
        DownsampleY = downsampleY;
        SaturationThreshold = saturationThreshold;
        _polygons = polygons;
    }

    /// <summary>Mask width.</summary>
    public int Width { get; }

    /// <summary>Mask height.</summary>
    public int Height { get; }

    /// <summary>1 for tissue, 0 elsewhere, row-major.</summary>
    public byte[] Mask { get; }

    /// <summary>Level-0 pixels a mask pixel spans along x.</summary>
    public double DownsampleX { get; }

    /// <summary>Level-0 pixels a mask pixel spans along y (differs from x only by rounding of the mask size).</summary>
    public double DownsampleY { get; }

    /// <summary>The threshold used (Otsu's or the fixed one).</summary>
    public int SaturationThreshold { get; }

    /// <summary>The tissue pieces as polygons in level-0 pixels, largest first.</summary>
    public IReadOnlyList<TissuePolygon> Polygons => _polygons.Value;

    /// <summary>Fraction of the mask that is tissue.</summary>
    public double TissueFraction => Mask.Length == 0 ? 0 : (double)Mask.Count(m => m != 0) / Mask.Length;

    /// <summary>
    /// Fraction of the level-0 rectangle (<paramref name="x"/>, <paramref name="y"/>, <paramref name="width"/>,
    /// <paramref name="height"/>) covered by tissue, from the mask pixels it overlaps (area-weighted).
    /// </summary>
    public double TissueFractionOf(double x, double y, double width, double height)
    {
        double x0 = x / DownsampleX, y0 = y / DownsampleY, x1 = (x + width) / DownsampleX, y1 = (y + height) / DownsampleY;
        double covered = 0, total = (x1 - x0) * (y1 - y0);
        if (total <= 0)
        {
            return 0;
        }

        for (int row = Math.Max(0, (int)Math.Floor(y0)); row < Math.Min(Height, (int)Math.Ceiling(y1)); row++)
        {
            double dy = Math.Min(row + 1, y1) - Math.Max(row, y0);
            for (int column = Math.Max(0, (int)Math.Floor(x0)); column < Math.Min(Width, (int)Math.Ceiling(x1)); column++)
            {
                if (Mask[(row * Width) + column] != 0)
                {
                    covered += dy * (Math.Min(column + 1, x1) - Math.Max(column, x0));
                }
            }
        }

        // Summed partial areas can exceed the total by rounding; a fraction stays in [0, 1].
        return Math.Clamp(covered / total, 0, 1);
    }
}
