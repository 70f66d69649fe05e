using System.Diagnostics;
using System.Text.Json;
using SlidePlugin.Engine.LabelMasks;

namespace SlidePlugin.Benchmarks.LabelMasks;

/// <summary>
/// Per-class pixel counts of a 10k x 10k label mask (the issue: "well under a second"): our histogram against numpy's
/// <c>bincount</c> on the same codes, median of several runs each, single-threaded on both sides.
/// </summary>
internal static class ClassStatisticsBenchmark
{
    public static async Task<int> RunAsync(int size, int repeats)
    {
        var codes = new byte[(long)size * size];
        for (int y = 0; y < size; y++)
        {
            for (int x = 0; x < size; x++)
            {
                codes[((long)y * size) + x] = (byte)(((x / 64) + (y / 64)) % 22);
            }
        }

        var times = new List<double>();
        long[] counts = [];
        for (int r = 0; r < repeats; r++)
        {
            var clock = Stopwatch.StartNew();
            counts = ClassStatistics.Histogram(codes);
            times.Add(clock.Elapsed.TotalMilliseconds);
        }

        double ours = times.Order().ElementAt(times.Count / 2);
        using JsonDocument reference = await ReferencePython.RunAsync("numpy_class_counts.py", size.ToString(System.Globalization.CultureInfo.InvariantCulture), repeats.ToString(System.Globalization.CultureInfo.InvariantCulture));
        JsonElement numpy = reference.RootElement;
        bool same = numpy.GetProperty("counts").EnumerateArray().Select(e => e.GetInt64()).SequenceEqual(counts.Take(22));
        double theirs = numpy.GetProperty("ms").GetDouble();
        Console.WriteLine($"class counts of a {size} x {size} mask (22 codes), median of {repeats}: ours {ours:0.0} ms, numpy bincount {theirs:0.0} ms, ratio {theirs / ours:0.00}x; counts equal: {same}");
        return same ? 0 : 1;
    }
}
