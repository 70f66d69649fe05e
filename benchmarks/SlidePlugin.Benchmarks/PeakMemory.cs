using System.Globalization;

namespace SlidePlugin.Benchmarks;

/// <summary>Peak resident set (VmHWM) from /proc: what ru_maxrss reports for the Python references.</summary>
internal static class PeakMemory
{
    /// <summary>VmHWM of process <paramref name="pid"/> ("self" for this one), in MiB.</summary>
    public static double MiB(string pid = "self")
    {
        string line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }
}
