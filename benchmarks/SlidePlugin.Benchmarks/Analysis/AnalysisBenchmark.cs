using System.Globalization;
using System.Text;
using System.Text.Json;
using SlidePlugin.Engine.Analysis;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Engine.Tissue;
using SlidePlugin.Tests;

namespace SlidePlugin.Benchmarks.Analysis;

/// <summary>
/// A whole analysis with the bundled model: ours (SlideAnalyzer, in a child process so its peak memory is its own; then
/// again in that process, warm, as a running sidecar analyses) vs
/// the same pipeline in openslide-python + PIL + PyTorch (tests/reference/torch_analyze.py: CLAM's tissue step in PIL, then
/// exactly the same tiles), one after the other, on CMU-1-Small-Region.svs and on generated slides. Prints tiles/s, the time shares, peak memory
/// and the slide probability of both (a numbers check).
/// </summary>
internal static class AnalysisBenchmark
{
    private static string ModelPath => Path.Combine(AppContext.BaseDirectory, "models", "default", "ucsb-gated-amil.safetensors");

    public static async Task<int> RunAsync(int[] sizes, int threads)
    {
        Console.WriteLine($"Analysis, bundled model, {threads} threads on both sides; ours: SlideAnalyzer (store in a temp folder); reference: openslide-python + OpenCV + PIL + PyTorch 1.13");
        Console.WriteLine("| slide | tiles | ours tiles/s | ours s | ours read thread-s / model s / store s / tissue s | ours peak MiB | PyTorch tiles/s | PyTorch s | PyTorch read s / model s / tissue s | PyTorch peak MiB | speed ratio | ours s, warm process | warm ratio | tissue fraction ours / OpenCV | P(malignant) ours / PyTorch |");
        Console.WriteLine("|---|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---|---|");
        var slides = new List<(string Name, string Path, double Mpp)> { ("CMU-1-Small-Region.svs", TestData.Path("slides", "CMU-1-Small-Region.svs"), 0.499) };
        slides.AddRange(sizes.Select(size => ($"generated {size}²", Slides.StreamTilesBenchmark.BenchmarkSlide(size), SyntheticSlides.Mpp)));
        foreach ((string name, string path, double mpp) in slides)
        {
            (string tileList, int tiles, double tissueDownsample, double tissueFraction) = WriteTileList(path, mpp);
            try
            {
                using JsonDocument ours = await ReferencePython.RunJsonAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "SlidePlugin.Benchmarks.dll"), "analyze-worker", path, mpp.ToString("R", CultureInfo.InvariantCulture), threads.ToString(CultureInfo.InvariantCulture)]);
                using JsonDocument torch = await ReferencePython.RunAsync("torch_analyze.py", path, tileList, ModelPath, Path.ChangeExtension(ModelPath, ".json"), threads.ToString(CultureInfo.InvariantCulture), "256",
                    tissueDownsample.ToString("R", CultureInfo.InvariantCulture));
                JsonElement o = ours.RootElement, t = torch.RootElement;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {tiles} | {o.GetProperty("tiles_per_second").GetDouble():0} | {o.GetProperty("seconds").GetDouble():0.0} | {o.GetProperty("read_thread_seconds").GetDouble():0.0} / {o.GetProperty("model_seconds").GetDouble():0.0} / {o.GetProperty("store_seconds").GetDouble():0.0} / {o.GetProperty("tissue_seconds").GetDouble():0.0} | {o.GetProperty("peak_rss_mib").GetDouble():0} | {t.GetProperty("tiles_per_second").GetDouble():0} | {t.GetProperty("tissue_seconds").GetDouble() + t.GetProperty("seconds").GetDouble():0.0} | {t.GetProperty("read_seconds").GetDouble():0.0} / {t.GetProperty("model_seconds").GetDouble():0.0} / {t.GetProperty("tissue_seconds").GetDouble():0.0} | {t.GetProperty("peak_rss_mib").GetDouble():0} | {o.GetProperty("tiles_per_second").GetDouble() / t.GetProperty("tiles_per_second").GetDouble():0.00}x | {o.GetProperty("warm_seconds").GetDouble():0.00} | {(t.GetProperty("tissue_seconds").GetDouble() + t.GetProperty("seconds").GetDouble()) / o.GetProperty("warm_seconds").GetDouble():0.00}x | {tissueFraction:0.000} / {t.GetProperty("tissue_fraction").GetDouble():0.000} | {o.GetProperty("p1").GetDouble():0.00000} / {t.GetProperty("probabilities")[1].GetDouble():0.00000} |"));
            }
            finally
            {
                File.Delete(tileList);
            }
        }

        return 0;
    }

    /// <summary>The child process: one analysis into a fresh store; prints JSON.</summary>
    public static async Task<int> RunWorkerAsync(string slidePath, double mpp, int threads)
    {
        EngineThreads.Set(threads);
        // Cold: this process's first analysis, as `slideplugin analyze` runs. Warm: a second one in the same process, on the
        // slide opened afresh and a new store, as a running sidecar (`serve`, or `analyze --server`) does it.
        (AnalysisResult result, double seconds) = await AnalyzeOnceAsync(slidePath, mpp);
        (_, double warmSeconds) = await AnalyzeOnceAsync(slidePath, mpp);
        AnalysisTimings timings = result.Timings!;
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, double>
        {
            ["tiles"] = result.Tiles.Count,
            ["seconds"] = seconds,
            ["warm_seconds"] = warmSeconds,
            ["tiles_per_second"] = result.Tiles.Count / seconds,
            ["tissue_seconds"] = timings.TissueSeconds,
            ["read_thread_seconds"] = timings.ReadThreadSeconds,
            ["model_seconds"] = timings.ModelSeconds,
            ["store_seconds"] = timings.StoreSeconds + timings.FinishSeconds,
            ["peak_rss_mib"] = PeakMemory.MiB(),
            ["p1"] = result.Probabilities[1],
        }));
        return 0;
    }

    /// <summary>One analysis of the slide, opened for it, into a fresh store; the whole call's seconds.</summary>
    private static async Task<(AnalysisResult Result, double Seconds)> AnalyzeOnceAsync(string slidePath, double mpp)
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-bench-analysis").FullName;
        try
        {
            using Slide slide = Slide.Open(slidePath);
            var analyzer = new SlideAnalyzer(new AnalysisStore(Path.Combine(folder, "analyses.sqlite")), AnalysisModel.Load(ModelPath));
            // The whole call: the result's own Seconds stops before the final write of attention to the store.
            var clock = System.Diagnostics.Stopwatch.StartNew();
            AnalysisResult result = await analyzer.AnalyzeAsync(slide, mpp, new AnalysisOptions());
            return (result, clock.Elapsed.TotalSeconds);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// The tiles our analyzer scores (same grid code and options), as read_region arguments for the Python side; and the
    /// downsample and tissue fraction of our tissue mask, for the Python side's own tissue step.
    /// </summary>
    private static (string Path, int Count, double TissueDownsample, double TissueFraction) WriteTileList(string slidePath, double mpp)
    {
        using Slide slide = Slide.Open(slidePath);
        AnalysisModel model = AnalysisModel.Load(ModelPath);
        TissueMask tissue = TissueDetector.Detect(slide, mpp);
        TileGrid grid = TileGrid.Build(slide, mpp, new TileGridOptions { TileSize = model.Card.Spec.PatchSize, TargetMpp = model.Card.Mpp, MinTissueFraction = 0.5 }, tissue);
        var csv = new StringBuilder();
        foreach (Tile tile in grid.Tiles)
        {
            int read = slide.LevelExtent(tile.Width, grid.ReadLevel);
            csv.Append(CultureInfo.InvariantCulture, $"{tile.X},{tile.Y},{grid.ReadLevel},{read},{read},{grid.TileSize}\n");
        }

        string path = Path.Combine(Path.GetTempPath(), $"slideplugin-bench-analysis-{Guid.NewGuid():N}.csv");
        File.WriteAllText(path, csv.ToString());
        return (path, grid.Tiles.Count, tissue.DownsampleX, tissue.TissueFraction);
    }
}
