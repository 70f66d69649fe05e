using System.Globalization;
using System.Text;

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
}
