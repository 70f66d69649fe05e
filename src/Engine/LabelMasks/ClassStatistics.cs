using System.Globalization;
using System.Text;
using SlidePlugin.Engine.Imaging;

namespace SlidePlugin.Engine.LabelMasks;

/// <summary>Pixel counts and fractions per class of one mask (or a total over several).</summary>
public sealed record ClassCounts(string Id, long Pixels, IReadOnlyDictionary<byte, long> Counts)
{
    /// <summary>Fraction of the pixels with <paramref name="code"/>.</summary>
    public double FractionOf(byte code) => Pixels == 0 ? 0 : (double)Counts.GetValueOrDefault(code) / Pixels;
}

/// <summary>Per-class pixel statistics of label masks: counted in one pass over the bytes, written as CSV.</summary>
public static class ClassStatistics
{
    /// <summary>How many pixels hold each code 0-255. Four interleaved histograms hide the store-to-load stall of runs of one code.</summary>
    public static long[] Histogram(ReadOnlySpan<byte> codes)
    {
        Span<int> h = new int[4 * 256];
        var total = new long[256];
        int i = 0;
        while (i < codes.Length)
        {
            // int counters: flush before any can overflow.
            int end = Math.Min(codes.Length, i + (int.MaxValue / 2));
            for (; i + 4 <= end; i += 4)
            {
                h[codes[i]]++;
                h[256 + codes[i + 1]]++;
                h[512 + codes[i + 2]]++;
                h[768 + codes[i + 3]]++;
            }

            for (; i < end; i++)
            {
                h[codes[i]]++;
            }

            for (int c = 0; c < 256; c++)
            {
                total[c] += (long)h[c] + h[256 + c] + h[512 + c] + h[768 + c];
            }

            h.Clear();
        }

        return total;
    }

    /// <summary>The counts of <paramref name="mask"/>, for the codes of <paramref name="table"/>.</summary>
    public static ClassCounts Of(string id, LabelMask mask, LabelTable table)
    {
        ArgumentNullException.ThrowIfNull(mask);
        ArgumentNullException.ThrowIfNull(table);
        long[] histogram = Histogram(mask.Codes);
        return new ClassCounts(id, mask.Codes.LongLength, table.Classes.ToDictionary(c => c.Code, c => histogram[c.Code]));
    }

    /// <summary>The sum of several masks' counts.</summary>
    public static ClassCounts Total(IEnumerable<ClassCounts> counts)
    {
        ArgumentNullException.ThrowIfNull(counts);
        var sum = new Dictionary<byte, long>();
        long pixels = 0;
        foreach (ClassCounts c in counts)
        {
            pixels += c.Pixels;
            foreach ((byte code, long n) in c.Counts)
            {
                sum[code] = sum.GetValueOrDefault(code) + n;
            }
        }

        return new ClassCounts("total", pixels, sum);
    }

    /// <summary>One row per mask and a total row: <c>id,pixels,&lt;class&gt;_pixels...,&lt;class&gt;_fraction...</c>.</summary>
    public static string ToCsv(IReadOnlyList<ClassCounts> counts, LabelTable table)
    {
        ArgumentNullException.ThrowIfNull(counts);
        ArgumentNullException.ThrowIfNull(table);
        var csv = new StringBuilder("id,pixels");
        foreach (LabelClass c in table.Classes)
        {
            csv.Append(',').Append(c.Name).Append("_pixels");
        }

        foreach (LabelClass c in table.Classes)
        {
            csv.Append(',').Append(c.Name).Append("_fraction");
        }

        csv.Append('\n');
        foreach (ClassCounts row in counts.Append(Total(counts)))
        {
            csv.Append(row.Id).Append(',').Append(row.Pixels.ToString(CultureInfo.InvariantCulture));
            foreach (LabelClass c in table.Classes)
            {
                csv.Append(',').Append(row.Counts.GetValueOrDefault(c.Code).ToString(CultureInfo.InvariantCulture));
            }

            foreach (LabelClass c in table.Classes)
            {
                csv.Append(',').Append(row.FractionOf(c.Code).ToString("0.######", CultureInfo.InvariantCulture));
            }

            csv.Append('\n');
        }

        return csv.ToString();
    }

    /// <summary>Geometry of <see cref="RenderChart"/>: label column, bar span, row pitch and bar height, in pixels.</summary>
    public const int ChartLabelWidth = 220, ChartBarWidth = 400, ChartRowHeight = 22, ChartBarHeight = 16;

    /// <summary>
    /// A horizontal bar chart of <paramref name="total"/>'s fractions: one row per class of <paramref name="table"/> that
    /// occurs, largest first, each bar in the class's colour (a bar's length is its fraction of the largest), labelled
    /// with the name and the percentage.
    /// </summary>
    public static Raster RenderChart(ClassCounts total, LabelTable table)
    {
        ArgumentNullException.ThrowIfNull(total);
        ArgumentNullException.ThrowIfNull(table);
        List<LabelClass> present = [.. table.Classes.Where(c => total.Counts.GetValueOrDefault(c.Code) > 0).OrderByDescending(c => total.Counts[c.Code])];
        int width = ChartLabelWidth + ChartBarWidth + 90, height = (ChartRowHeight * Math.Max(1, present.Count)) + 12;
        var canvas = new DrawingCanvas(width, height, (255, 255, 255));
        double largest = present.Count == 0 ? 1 : total.FractionOf(present[0].Code);
        for (int row = 0; row < present.Count; row++)
        {
            LabelClass c = present[row];
            double fraction = total.FractionOf(c.Code);
            int top = 6 + (row * ChartRowHeight), bar = Math.Max(1, (int)Math.Round(ChartBarWidth * fraction / largest));
            canvas.DrawText(c.Name, ChartLabelWidth - 8, top, (40, 40, 40), anchorRight: true);
            canvas.FillRectangle(ChartLabelWidth, top, bar, ChartBarHeight, c.Color);
            canvas.DrawText(fraction.ToString("0.0%", CultureInfo.InvariantCulture), ChartLabelWidth + bar + 6, top, (40, 40, 40));
        }

        return canvas.ToRaster();
    }
}
