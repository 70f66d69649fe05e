using SlidePlugin.Grpc.Tests.Server;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Hosting;

namespace SlidePlugin.Grpc.Tests.Client;

/// <summary>What the SDK's channel adds to Grpc.Net.Client: reads retried on UNAVAILABLE, nothing else retried, addresses.</summary>
public sealed class SlidePluginChannelTests
{
    [Fact]
    public async Task RetryReads_UnavailableTwiceThenServed_GetSlideInfoAnswersAfterThreeAttempts()
    {
        var slides = new FlakySlides(failures: 2);
        await using SidecarServer server = await StartAsync(slides, new FlakyAnalyses());
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());

        GetSlideInfoResponse info = await new SlideService.SlideServiceClient(channel).GetSlideInfoAsync(new GetSlideInfoRequest { Path = "x" });

        Assert.Equal(7, info.Width);
        Assert.Equal(3, slides.Calls);
        await server.StopAsync();
    }

    [Fact]
    public async Task RetryReads_AnalyzeSlideUnavailable_NotRepeated()
    {
        var analyses = new FlakyAnalyses();
        await using SidecarServer server = await StartAsync(new FlakySlides(0), analyses);
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());

        using AsyncServerStreamingCall<AnalyzeSlideResponse> call = new AnalysisService.AnalysisServiceClient(channel).AnalyzeSlide(new AnalyzeSlideRequest { Path = "x" });
        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal(1, analyses.Calls); // it starts work on the server: only the caller may decide to run it again
        await server.StopAsync();
    }

    [Fact]
    public async Task RetryReads_Off_UnavailableReachesTheCaller()
    {
        var slides = new FlakySlides(failures: 1);
        await using SidecarServer server = await StartAsync(slides, new FlakyAnalyses());
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single(), new SlidePluginClientOptions { RetryReads = false });

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await new SlideService.SlideServiceClient(channel).GetSlideInfoAsync(new GetSlideInfoRequest { Path = "x" }));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal(1, slides.Calls);
        await server.StopAsync();
    }

    [Theory]
    [InlineData("ftp://127.0.0.1:1")]
    [InlineData("mailto:someone")]
    public void ForAddress_NotAGrpcAddress_ArgumentExceptionNamingTheForms(string address)
    {
        var error = Assert.Throws<ArgumentException>(() => SlidePluginChannel.ForAddress(address));

        Assert.Contains("HOST:PORT or unix:/path", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ForAddress_HostPortWithoutScheme_CleartextToThatPort()
    {
        var slides = new FlakySlides(failures: 0);
        await using SidecarServer server = await StartAsync(slides, new FlakyAnalyses());
        using GrpcChannel channel = SlidePluginChannel.ForAddress(new Uri(server.Addresses.Single()).Authority); // "127.0.0.1:PORT", as grpcurl takes it

        Assert.Equal(7, (await new SlideService.SlideServiceClient(channel).GetSlideInfoAsync(new GetSlideInfoRequest())).Width);
        await server.StopAsync();
    }

    private static async Task<SidecarServer> StartAsync(FlakySlides slides, FlakyAnalyses analyses)
    {
        SidecarServer server = SidecarServer.Create(new ServerSettings { Listen = "127.0.0.1:0" }, Serilog.Core.Logger.None, registry =>
        {
            registry.Add(slides);
            registry.Add(analyses);
        });
        await server.StartAsync();
        return server;
    }

    /// <summary>A SlideService that is unavailable for its first <c>failures</c> calls.</summary>
    private sealed class FlakySlides(int failures) : SlideService.SlideServiceBase
    {
        private int _calls;

        public int Calls => _calls;

        public override Task<GetSlideInfoResponse> GetSlideInfo(GetSlideInfoRequest request, ServerCallContext context) =>
            Interlocked.Increment(ref _calls) <= failures
                ? throw new RpcException(new Status(StatusCode.Unavailable, "warming up"))
                : Task.FromResult(new GetSlideInfoResponse { Width = 7 });
    }

    /// <summary>An AnalysisService whose AnalyzeSlide is always unavailable.</summary>
    private sealed class FlakyAnalyses : AnalysisService.AnalysisServiceBase
    {
        private int _calls;

        public int Calls => _calls;

        public override Task AnalyzeSlide(AnalyzeSlideRequest request, IServerStreamWriter<AnalyzeSlideResponse> responseStream, ServerCallContext context)
        {
            Interlocked.Increment(ref _calls);
            throw new RpcException(new Status(StatusCode.Unavailable, "busy"));
        }
    }
}
