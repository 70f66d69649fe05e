namespace SlidePlugin.Engine.Tissue;

/// <summary>A point in level-0 pixel coordinates (x = column, y = row).</summary>
public readonly record struct PointD(double X, double Y);

/// <summary>One piece of tissue as a polygon in level-0 pixels: an exterior ring and its holes (rings closed implicitly).</summary>
public sealed record TissuePolygon(IReadOnlyList<PointD> Exterior, IReadOnlyList<IReadOnlyList<PointD>> Holes, double AreaSquareMicrons);

/// <summary>
/// Where the tissue is: a binary mask at the segmentation scale, and the same as polygons in level-0 pixels.
/// </summary>
/// <param name="Width">Mask width.</param>
/// <param name="Height">Mask height.</param>
/// <param name="Mask">1 for tissue, 0 elsewhere, row-major.</param>
/// <param name="DownsampleX">Level-0 pixels a mask pixel spans along x.</param>
/// <param name="DownsampleY">Level-0 pixels a mask pixel spans along y (differs from x only by rounding of the mask size).</param>
/// <param name="SaturationThreshold">The threshold used (Otsu's or the fixed one).</param>
/// <param name="Polygons">The tissue pieces, largest first.</param>
public sealed record TissueMask(int Width, int Height, byte[] Mask, double DownsampleX, double DownsampleY, int SaturationThreshold, IReadOnlyList<TissuePolygon> Polygons)
{
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
