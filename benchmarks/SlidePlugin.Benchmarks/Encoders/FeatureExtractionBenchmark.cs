using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;
using SlidePlugin.Tests;

namespace SlidePlugin.Benchmarks.Encoders;

/// <summary>
/// Whole-slide feature extraction (read + decode + encode) with CLAM's encoder (ResNet-50 cut after layer3, 224 px at
/// 0.5 µm/px, 1024 features): `slideplugin features` as its own process vs a TRIDENT-style Python pipeline
/// (openslide-python + PIL + PyTorch 1.13, channels-last, frozen) over the same tiles, same thread count, same weights.
/// </summary>
internal static class FeatureExtractionBenchmark
{
    public static async Task<int> RunAsync(int[] sizes, int threads)
    {
        string work = Directory.CreateTempSubdirectory("slideplugin-bench-features").FullName;
        try
        {
            string encoder = Path.Combine(work, "clam-resnet50");
            using (JsonDocument _ = await ReferencePython.RunJsonAsync("/usr/bin/python3", Path.Combine(AppContext.BaseDirectory, "export_encoder.py"), "export", "--arch", "clam-resnet50", "--out", encoder))
            {
            }

            Console.WriteLine($"Feature extraction, CLAM's encoder (ResNet-50 to layer3, 224 px at 0.5 µm/px -> 1024); {threads} threads each");
            var rows = new List<string>();
            var slides = new List<(string Name, string Path)> { ("CMU-1-Small-Region", TestData.Path("slides", "CMU-1-Small-Region.svs")) };
            slides.AddRange(sizes.Select(s => ($"generated {s}²", Slides.StreamTilesBenchmark.BenchmarkSlide(s))));
            foreach ((string name, string slide) in slides)
            {
                string output = Path.Combine(work, "out-" + Guid.NewGuid().ToString("N"));
                (double oursSeconds, double oursPeak) = await RunOursAsync(slide, encoder + ".onnx", output, threads);
                string features = Directory.GetFiles(output, "*.features.safetensors").Single();
                int tiles = int.Parse(SafeTensors.ReadMetadata(features)["tile_count"], CultureInfo.InvariantCulture);
                string tileList = WriteTileList(slide, Path.Combine(work, "tiles.csv"));
                using JsonDocument python = await ReferencePython.RunAsync("python_features.py", slide, tileList, encoder + ".pt",
                    Path.Combine(AppContext.BaseDirectory, "export_encoder.py"), threads.ToString(CultureInfo.InvariantCulture));
                JsonElement p = python.RootElement;
                if (p.GetProperty("tiles").GetInt32() != tiles)
                {
                    throw new InvalidOperationException($"Tile counts differ: ours {tiles}, Python {p.GetProperty("tiles").GetInt32()}.");
                }

                double oursRate = tiles / oursSeconds, pythonRate = tiles / p.GetProperty("seconds").GetDouble();
                rows.Add(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {tiles} | {oursRate:0.0} | {oursSeconds:0.0} | {oursPeak:0} | {pythonRate:0.0} | {p.GetProperty("peak_rss_mib").GetDouble():0} | {oursRate / pythonRate:0.00}x |"));
            }

            Console.WriteLine();
            Console.WriteLine("| slide | tiles | ours tiles/s | ours s (whole command: tissue, read, encode, write) | ours peak MiB | Python tiles/s (read + encode loop) | Python peak MiB | ours vs Python |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
            rows.ForEach(Console.WriteLine);
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<(double Seconds, double PeakMiB)> RunOursAsync(string slide, string encoder, string output, int threads)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "slideplugin.dll"), "features", slide, "--encoder", encoder, "--out", output })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["SLIDEPLUGIN_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
        var clock = Stopwatch.StartNew();
        using Process process = Process.Start(start)!;
        double peak = 0;
        Task<string> stderr = process.StandardError.ReadToEndAsync(), stdout = process.StandardOutput.ReadToEndAsync();
        while (!process.HasExited)
        {
            try
            {
                peak = Math.Max(peak, PeakMemory.MiB(process.Id.ToString(CultureInfo.InvariantCulture)));
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                // Exiting: /proc no longer has its memory lines; the last reading stands.
            }

            await Task.Delay(50);
        }

        await process.WaitForExitAsync();
        return process.ExitCode == 0 ? (clock.Elapsed.TotalSeconds, peak) : throw new InvalidOperationException($"slideplugin features failed: {await stderr}{await stdout}");
    }

    /// <summary>The tiles `features` encodes (same grid code), as read_region arguments at the grid's read level.</summary>
    private static string WriteTileList(string slidePath, string path)
    {
        using Slide slide = Slide.Open(slidePath);
        double mpp = slide.RequireMpp();
        (TileGrid grid, _) = TileGrid.OverTissue(slide, mpp, new TileGridOptions { TileSize = 224, TargetMpp = 0.5, MinTissueFraction = 0.5 });
        var csv = new StringBuilder();
        foreach (Tile tile in grid.Tiles)
        {
            int read = slide.LevelExtent(tile.Width, grid.ReadLevel);
            csv.Append(CultureInfo.InvariantCulture, $"{tile.X},{tile.Y},{grid.ReadLevel},{read},{read},{grid.TileSize}\n");
        }

        File.WriteAllText(path, csv.ToString());
        return path;
    }
}
