using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;
using SlidePlugin.Tests;

namespace SlidePlugin.Benchmarks.Slides;

/// <summary>
/// StreamTiles (256 px JPEG tiles at 0.5 µm/px) from a `slideplugin serve` process to a client, vs a
/// Python loop of openslide-python read_region + PIL JPEG encode over the same tiles, on generated slides
/// of two sizes: tiles/s and peak memory (the server's VmHWM, the loop's ru_maxrss).
/// </summary>
internal static partial class StreamTilesBenchmark
{
    private const int Quality = 90;

    public static async Task<int> RunAsync(int[] sizes)
    {
        Console.WriteLine($"StreamTiles vs openslide-python + PIL; {Environment.ProcessorCount} cores; JPEG q{Quality}, 256 px at 0.5 µm/px, tissue tiles only");
        var rows = new List<string>();
        foreach (int size in sizes)
        {
            string slide = BenchmarkSlide(size);
            (int tiles, string tileList) = WriteTileList(slide);
            Result ours = await RunServerAsync(slide);
            Result python = await RunPythonAsync(slide, tileList);
            File.Delete(tileList);
            if (ours.Tiles != tiles || python.Tiles != tiles)
            {
                throw new InvalidOperationException($"Tile counts differ: grid {tiles}, StreamTiles {ours.Tiles}, Python {python.Tiles}.");
            }

            rows.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {size} x {size} | {tiles} | {ours.TilesPerSecond:0} | {ours.TotalSeconds:0.0} | {ours.PeakMiB:0} | {python.TilesPerSecond:0} | {python.PeakMiB:0} | {ours.TilesPerSecond / python.TilesPerSecond:0.00}x |"));
        }

        Console.WriteLine();
        Console.WriteLine("| slide | tiles | StreamTiles tiles/s | StreamTiles total s (with tissue detection) | server peak MiB | Python loop tiles/s | Python peak MiB | ours vs Python |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        rows.ForEach(Console.WriteLine);
        return 0;
    }

    /// <summary>A slide whose tissue covers about half of it: blobs on a 4096 px pitch, 3072 px wide.</summary>
    internal static string BenchmarkSlide(int size)
    {
        var blobs = new List<Level0Rect>();
        for (int y = 1024; y + 3072 <= size; y += 4096)
        {
            for (int x = 1024; x + 3072 <= size; x += 4096)
            {
                blobs.Add(new Level0Rect(x, y, 3072, 3072));
            }
        }

        return SyntheticSlides.Generate(size, size, blobs);
    }

    /// <summary>The tiles the server will send (same engine code), as read_region arguments for the Python loop.</summary>
    private static (int Tiles, string Path) WriteTileList(string slidePath)
    {
        using Slide slide = Slide.Open(slidePath);
        TileGrid grid = TileGrid.Build(slide, SyntheticSlides.Mpp, new TileGridOptions { TargetMpp = 0.5 }, TissueDetector.Detect(slide, SyntheticSlides.Mpp));
        var csv = new StringBuilder();
        foreach (Tile tile in grid.Tiles)
        {
            int read = slide.LevelExtent(tile.Width, grid.ReadLevel);
            csv.Append(CultureInfo.InvariantCulture, $"{tile.X},{tile.Y},{grid.ReadLevel},{read},{read},{grid.TileSize}\n");
        }

        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"slideplugin-bench-tiles-{Guid.NewGuid():N}.csv");
        File.WriteAllText(path, csv.ToString());
        return (grid.Tiles.Count, path);
    }

    private static async Task<Result> RunServerAsync(string slidePath)
    {
        string sidecar = System.IO.Path.Combine(AppContext.BaseDirectory, "slideplugin.dll");
        var startInfo = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string arg in new[] { sidecar, "serve", "--listen", "127.0.0.1:0", "--slide-root", System.IO.Path.GetDirectoryName(slidePath)! })
        {
            startInfo.ArgumentList.Add(arg);
        }

        using Process server = Process.Start(startInfo)!;
        try
        {
            string address = await WaitForAddressAsync(server);
            using GrpcChannel channel = SlidePluginChannel.ForAddress(address);
            var client = new SlideService.SlideServiceClient(channel);
            long start = Stopwatch.GetTimestamp();
            long firstTile = 0;
            int tiles = 0;
            TimeSpan serverCpu = default, clientCpu = default;
            using (AsyncServerStreamingCall<StreamTilesResponse> call = client.StreamTiles(new StreamTilesRequest
            {
                Path = System.IO.Path.GetFileName(slidePath),
                TargetMpp = 0.5,
                Encoding = new ImageEncoding { Format = ImageFormat.Jpeg, Quality = Quality },
            }))
            {
                await foreach (StreamTilesResponse message in call.ResponseStream.ReadAllAsync())
                {
                    if (message.ItemCase == StreamTilesResponse.ItemOneofCase.Grid)
                    {
                        firstTile = Stopwatch.GetTimestamp();
                        server.Refresh();
                        serverCpu = server.TotalProcessorTime;
                        clientCpu = Process.GetCurrentProcess().TotalProcessorTime;
                    }
                    else
                    {
                        tiles++;
                    }
                }
            }

            double tileSeconds = Stopwatch.GetElapsedTime(firstTile).TotalSeconds;
            server.Refresh();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {tiles} tiles in {tileSeconds:0.00} s: server {(server.TotalProcessorTime - serverCpu).TotalMilliseconds / tiles:0.00} CPU ms a tile, client {(Process.GetCurrentProcess().TotalProcessorTime - clientCpu).TotalMilliseconds / tiles:0.00}"));
            double totalSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            double peakMiB = PeakMemory.MiB(server.Id.ToString(CultureInfo.InvariantCulture));
            return new Result(tiles, tiles / tileSeconds, totalSeconds, peakMiB);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    /// <summary>The address a `slideplugin serve` process reports on stderr once it listens.</summary>
    internal static async Task<string> WaitForAddressAsync(Process server)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (await server.StandardError.ReadLineAsync(timeout.Token) is { } line)
        {
            if (ListenAddress().Match(line) is { Success: true } match)
            {
                return match.Value;
            }
        }

        throw new InvalidOperationException("The server exited before it listened.");
    }

    private static async Task<Result> RunPythonAsync(string slidePath, string tileList)
    {
        using JsonDocument json = await ReferencePython.RunAsync("python_tile_loop.py", slidePath, tileList, Quality.ToString(CultureInfo.InvariantCulture));
        JsonElement r = json.RootElement;
        int tiles = r.GetProperty("tiles").GetInt32();
        double seconds = r.GetProperty("seconds").GetDouble();
        return new Result(tiles, tiles / seconds, seconds, r.GetProperty("peak_rss_mib").GetDouble());
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex ListenAddress();

    private sealed record Result(int Tiles, double TilesPerSecond, double TotalSeconds, double PeakMiB);
}
