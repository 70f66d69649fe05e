using System.Diagnostics;
using Serilog;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Sidecar.Services;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Services;

/// <summary>Streams that a client opens and never reads, on the 30k generated slide, against a server taking 2 at once.</summary>
public sealed class SlideServiceLimitsTests
{
    [Fact]
    public async Task StreamTiles_MoreStreamsThanTheLimitNeverRead_TwoRunTwoWaitTheRestRefusedAndMetadataStaysFast()
    {
        string large = SyntheticSlides.Large();
        using var service = new SlideServiceImpl(new SlideRoots([Path.GetDirectoryName(large)!]), maxStreams: 2);
        await using SidecarServer server = SidecarServer.Create(new ServerSettings { Listen = "127.0.0.1:0" }, new LoggerConfiguration().CreateLogger(), service.BindTo);
        await server.StartAsync();
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());
        var client = new SlideService.SlideServiceClient(channel);
        var request = new StreamTilesRequest { Path = Path.GetFileName(large), TargetMpp = 0.5, MinTissueFraction = 0 };
        var streams = new List<AsyncServerStreamingCall<StreamTilesResponse>>();
        try
        {
            for (int i = 0; i < 2; i++)
            {
                AsyncServerStreamingCall<StreamTilesResponse> running = client.StreamTiles(request);
                Assert.True(await running.ResponseStream.MoveNext(CancellationToken.None)); // the grid: it runs, then stalls on flow control
                streams.Add(running);
            }

            Task<bool>[] waiting = [.. Enumerable.Range(0, 2).Select(_ =>
            {
                AsyncServerStreamingCall<StreamTilesResponse> call = client.StreamTiles(request);
                streams.Add(call);
                return call.ResponseStream.MoveNext(CancellationToken.None);
            })];
            await Task.Delay(500);
            AsyncServerStreamingCall<StreamTilesResponse> refused = client.StreamTiles(request);
            streams.Add(refused);
            RpcException error = await Assert.ThrowsAsync<RpcException>(() => refused.ResponseStream.MoveNext(CancellationToken.None));

            var latencies = new List<double>();
            for (int i = 0; i < 20; i++)
            {
                var clock = Stopwatch.StartNew();
                await client.GetSlideInfoAsync(new GetSlideInfoRequest { Path = Path.GetFileName(large) }, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10)));
                latencies.Add(clock.Elapsed.TotalMilliseconds);
            }

            Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
            Assert.Contains("2 tile streams are running and 2 waiting", error.Status.Detail, StringComparison.Ordinal);
            Assert.All(waiting, w => Assert.False(w.IsCompleted)); // queued behind the two running ones
            // A loose bound that only a starved server misses (it was tens of seconds): not a timing benchmark.
            Assert.True(latencies.Max() < 2000, $"GetSlideInfo took up to {latencies.Max():0} ms while the streams ran");

            streams[0].Dispose(); // one running stream ends: a waiting one starts
            Assert.True(await await Task.WhenAny(waiting).WaitAsync(TimeSpan.FromSeconds(30)));
        }
        finally
        {
            streams.ForEach(s => s.Dispose());
            await server.StopAsync();
        }
    }
}
