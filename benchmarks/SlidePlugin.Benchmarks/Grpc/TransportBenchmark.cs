using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Serilog;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using SlidePlugin.Benchmarks.V1;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Sidecar.Hosting;

namespace SlidePlugin.Benchmarks.Grpc;

/// <summary>
/// Loopback gRPC: round-trip latency of small unary calls and streaming throughput of 64 KiB messages,
/// our SDK vs Python grpcio's C-core client, both against our server in its own process, in one run.
/// </summary>
internal static class TransportBenchmark
{
    public static async Task<int> RunAsync(int pings, int blocks, int blockSize)
    {
        // The server runs in its own process (this program in server mode), so neither client shares its cores' scheduling
        // or its garbage collector with it.
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "SlidePlugin.Benchmarks.dll"), "grpc-server" })
        {
            start.ArgumentList.Add(arg);
        }

        using Process server = Process.Start(start)!;
        try
        {
            string address = await server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30))
                ?? throw new InvalidOperationException($"The benchmark server exited: {await server.StandardError.ReadToEndAsync()}");
            Console.WriteLine($"server {address} (own process); {pings} unary pings, {blocks} x {blockSize / 1024} KiB streamed; {Environment.ProcessorCount} cores");

            Result ours = await RunOurClientAsync(address, pings, blocks, blockSize);
            Result python = await RunPythonClientAsync(address, pings, blocks, blockSize);

            Console.WriteLine();
            Console.WriteLine("| client (server: ours, own process) | unary p50 µs | unary p99 µs | unary calls/s | stream MiB/s | stream msgs/s |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            foreach ((string name, Result r) in new[] { ("our SDK (Grpc.Net.Client 2.85)", ours), ("Python grpcio 1.51 (C core)", python) })
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {r.P50:0} | {r.P99:0} | {r.CallsPerSecond:0} | {r.MiBPerSecond:0} | {r.MessagesPerSecond:0} |"));
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| ours vs Python (>1: ours better) | {python.P50 / ours.P50:0.00}x | {python.P99 / ours.P99:0.00}x | {ours.CallsPerSecond / python.CallsPerSecond:0.00}x | {ours.MiBPerSecond / python.MiBPerSecond:0.00}x | {ours.MessagesPerSecond / python.MessagesPerSecond:0.00}x |"));
            return 0;
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    /// <summary>Server mode: hosts the benchmark service on a free loopback port, prints the address, serves until killed.</summary>
    public static async Task<int> ServeAsync()
    {
        Serilog.ILogger logger = new Serilog.LoggerConfiguration().MinimumLevel.Warning().WriteTo.Console(standardErrorFromLevel: Serilog.Events.LogEventLevel.Verbose).CreateLogger();
        await using SidecarServer server = SidecarServer.Create(new ServerSettings { Listen = "127.0.0.1:0" }, logger, registry => registry.Add(new BenchmarkService()));
        await server.StartAsync();
        Console.WriteLine(server.Addresses.Single());
        await Task.Delay(Timeout.Infinite);
        return 0;
    }

    private sealed class BenchmarkService : TransportBenchmarkService.TransportBenchmarkServiceBase
    {
        public override Task<PingResponse> Ping(PingRequest request, ServerCallContext context) => Task.FromResult(new PingResponse { Sequence = request.Sequence });

        public override async Task Download(DownloadRequest request, IServerStreamWriter<Block> responseStream, ServerCallContext context)
        {
            ByteString data = ByteString.CopyFrom(new byte[request.Size]);
            for (int i = 0; i < request.Count; i++)
            {
                await responseStream.WriteAsync(new Block { Index = i, Data = data }, context.CancellationToken);
            }
        }
    }

    private static async Task<Result> RunOurClientAsync(string address, int pings, int blocks, int blockSize)
    {
        using GrpcChannel channel = SlidePluginChannel.ForAddress(address, new SlidePluginClientOptions { MaxReceiveMessageSize = 8 * 1024 * 1024 });
        var client = new TransportBenchmarkService.TransportBenchmarkServiceClient(channel);
        for (int i = 0; i < 200; i++)
        {
            await client.PingAsync(new PingRequest { Sequence = i });
        }

        await DrainAsync(client, 100, blockSize);
        var latencies = new double[pings];
        for (int i = 0; i < pings; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            await client.PingAsync(new PingRequest { Sequence = i });
            latencies[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
        }

        Array.Sort(latencies);
        long start = Stopwatch.GetTimestamp();
        long bytes = await DrainAsync(client, blocks, blockSize);
        return new Result(latencies, Stopwatch.GetElapsedTime(start).TotalSeconds, bytes, blocks);
    }

    private static async Task<long> DrainAsync(TransportBenchmarkService.TransportBenchmarkServiceClient client, int blocks, int blockSize)
    {
        using AsyncServerStreamingCall<Block> call = client.Download(new DownloadRequest { Count = blocks, Size = blockSize });
        long bytes = 0;
        await foreach (Block block in call.ResponseStream.ReadAllAsync())
        {
            bytes += block.Data.Length;
        }

        return bytes;
    }

    private static async Task<Result> RunPythonClientAsync(string address, int pings, int blocks, int blockSize)
    {
        string descriptorSet = Path.Combine(Path.GetTempPath(), $"slideplugin-bench-{Guid.NewGuid():N}.pb");
        var set = new FileDescriptorSet();
        set.File.Add(FileDescriptorProto.Parser.ParseFrom(BenchmarkReflection.Descriptor.SerializedData));
        await File.WriteAllBytesAsync(descriptorSet, set.ToByteArray());
        try
        {
            using JsonDocument json = await ReferencePython.RunAsync("python_transport_client.py", new Uri(address).Authority, descriptorSet,
                pings.ToString(CultureInfo.InvariantCulture), blocks.ToString(CultureInfo.InvariantCulture), blockSize.ToString(CultureInfo.InvariantCulture));
            double[] latencies = json.RootElement.GetProperty("latencies_us").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            return new Result(latencies, json.RootElement.GetProperty("stream_seconds").GetDouble(), json.RootElement.GetProperty("stream_bytes").GetInt64(), blocks);
        }
        finally
        {
            File.Delete(descriptorSet);
        }
    }

    private sealed record Result(double[] SortedLatenciesUs, double StreamSeconds, long StreamBytes, int StreamMessages)
    {
        public double P50 => SortedLatenciesUs[SortedLatenciesUs.Length / 2];
        public double P99 => SortedLatenciesUs[(int)(SortedLatenciesUs.Length * 0.99)];
        public double CallsPerSecond => 1e6 * SortedLatenciesUs.Length / SortedLatenciesUs.Sum();
        public double MiBPerSecond => StreamBytes / 1048576.0 / StreamSeconds;
        public double MessagesPerSecond => StreamMessages / StreamSeconds;
    }
}
