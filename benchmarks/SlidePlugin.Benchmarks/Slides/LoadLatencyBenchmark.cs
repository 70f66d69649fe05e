using System.Diagnostics;
using System.Globalization;
using Grpc.Health.V1;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;

namespace SlidePlugin.Benchmarks.Slides;

/// <summary>
/// GetSlideInfo and health latency on a `slideplugin serve` process while it runs <c>streams</c> StreamTiles calls
/// (tissue detection, then 256 px JPEG tiles read as fast as the clients take them) on a generated slide,
/// against the same calls on the idle server. The target: metadata p99 under 100 ms with 32 streams.
/// </summary>
internal static class LoadLatencyBenchmark
{
    public static async Task<int> RunAsync(int size, int streams, double seconds, bool tissueOnly)
    {
        Console.WriteLine(tissueOnly
            ? $"GetSlideInfo under load; {Environment.ProcessorCount} cores; {streams} clients calling DetectTissue in a loop on a {size}² slide, {seconds:0} s"
            : $"GetSlideInfo under load; {Environment.ProcessorCount} cores; {streams} StreamTiles calls on a {size}² slide (tissue detection, then JPEG tiles), {seconds:0} s");
        string slide = StreamTilesBenchmark.BenchmarkSlide(size);
        string sidecar = Path.Combine(AppContext.BaseDirectory, "slideplugin.dll");
        var startInfo = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string arg in new[] { sidecar, "serve", "--listen", "127.0.0.1:0", "--slide-root", Path.GetDirectoryName(slide)! })
        {
            startInfo.ArgumentList.Add(arg);
        }

        using Process server = Process.Start(startInfo)!;
        try
        {
            string address = await StreamTilesBenchmark.WaitForAddressAsync(server);
            _ = DrainAsync(server.StandardError);
            using GrpcChannel channel = SlidePluginChannel.ForAddress(address);
            var slides = new SlideService.SlideServiceClient(channel);
            var health = new Health.HealthClient(channel);
            string name = Path.GetFileName(slide);

            (List<double> idleInfo, List<double> idleHealth) = await SampleAsync(channel, slides, health, name, TimeSpan.FromSeconds(Math.Min(seconds, 5)), () => true);

            using var stop = new CancellationTokenSource();
            long tiles = 0;
            int refused = 0;
            Task[] load = [.. Enumerable.Range(0, streams).Select(async _ =>
            {
                var request = new StreamTilesRequest { Path = name, TargetMpp = 0.5, Encoding = new ImageEncoding { Format = ImageFormat.Jpeg, Quality = 90 } };
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        if (tissueOnly)
                        {
                            await slides.DetectTissueAsync(new DetectTissueRequest { Path = name }, new CallOptions(cancellationToken: stop.Token));
                            continue;
                        }

                        using AsyncServerStreamingCall<StreamTilesResponse> call = slides.StreamTiles(request, new CallOptions(cancellationToken: stop.Token));
                        await foreach (StreamTilesResponse message in call.ResponseStream.ReadAllAsync(stop.Token))
                        {
                            if (message.ItemCase == StreamTilesResponse.ItemOneofCase.Tile)
                            {
                                Interlocked.Increment(ref tiles);
                            }
                        }
                    }
                    catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted)
                    {
                        Interlocked.Increment(ref refused);
                        await Task.Delay(100, stop.Token).ConfigureAwait(false);
                    }
                    catch (Exception) when (stop.IsCancellationRequested)
                    {
                    }
                }
            })];
            await Task.Delay(500); // the streams are admitted and their tissue detections start
            long before = Interlocked.Read(ref tiles);
            var clock = Stopwatch.StartNew();
            (List<double> loadInfo, List<double> loadHealth) = await SampleAsync(channel, slides, health, name, TimeSpan.FromSeconds(seconds), () => true);
            double tileRate = (Interlocked.Read(ref tiles) - before) / clock.Elapsed.TotalSeconds;
            await stop.CancelAsync();
            await Task.WhenAll(load.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));

            Console.WriteLine();
            Console.WriteLine("| call | idle p50 ms | idle p99 ms | under load p50 ms | under load p99 ms | calls under load | tiles/s streamed meanwhile | load calls refused (queue full) |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
            Console.WriteLine(Row("GetSlideInfo", idleInfo, loadInfo, tileRate, refused));
            Console.WriteLine(Row("Health.Check", idleHealth, loadHealth, tileRate, refused));
            return 0;
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    /// <summary>Alternates GetSlideInfo and Health.Check calls, one at a time, every 20 ms, for <paramref name="duration"/>.</summary>
    private static async Task<(List<double> Info, List<double> Health)> SampleAsync(GrpcChannel channel, SlideService.SlideServiceClient slides, Health.HealthClient health, string name, TimeSpan duration, Func<bool> go)
    {
        var info = new List<double>();
        var check = new List<double>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration && go())
        {
            long start = Stopwatch.GetTimestamp();
            await slides.GetSlideInfoAsync(new GetSlideInfoRequest { Path = name }, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10)));
            info.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            start = Stopwatch.GetTimestamp();
            await health.CheckAsync(new HealthCheckRequest(), new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10)));
            check.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            await Task.Delay(20);
        }

        return (info, check);
    }

    private static string Row(string call, List<double> idle, List<double> load, double tileRate, int refused) =>
        string.Create(CultureInfo.InvariantCulture,
            $"| {call} | {Percentile(idle, 0.5):0.0} | {Percentile(idle, 0.99):0.0} | {Percentile(load, 0.5):0.0} | {Percentile(load, 0.99):0.0} | {load.Count} | {tileRate:0} | {refused} |");

    private static double Percentile(List<double> values, double p)
    {
        double[] sorted = [.. values.Order()];
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
    }

    private static async Task DrainAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is not null)
        {
        }
    }

}
