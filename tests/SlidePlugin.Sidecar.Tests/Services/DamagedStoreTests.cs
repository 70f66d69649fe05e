using Serilog;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Cli;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Sidecar.Services;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Services;

public sealed class DamagedStoreTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("slideplugin-damaged-store").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task Serve_DamagedAnalysisStore_StartsServesSlidesAndAnswersStoreCallsWithDataLossNamingTheFile()
    {
        string store = Path.Combine(_work, "analyses.sqlite");
        await File.WriteAllBytesAsync(store, [.. Enumerable.Range(0, 8192).Select(i => (byte)(i * 31))]);
        var roots = new SlideRoots([TestData.Path("slides")]);
        using var slides = new SlideServiceImpl(roots);
        using var analyses = new AnalysisServiceImpl(roots, _work, BundledModel.Path);
        ILogger logger = new LoggerConfiguration().MinimumLevel.Warning().CreateLogger();
        await using SidecarServer server = SidecarServer.Create(new ServerSettings { Listen = "127.0.0.1:0" }, logger, registry =>
        {
            slides.BindTo(registry);
            analyses.BindTo(registry);
        });
        await server.StartAsync();
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());

        GetSlideInfoResponse info = await new SlideService.SlideServiceClient(channel).GetSlideInfoAsync(new GetSlideInfoRequest { Path = "CMU-1-Small-Region.svs" });
        RpcException error = await Assert.ThrowsAsync<RpcException>(async () => await new AnalysisService.AnalysisServiceClient(channel).ListAnalysesAsync(new ListAnalysesRequest()));

        Assert.Equal(2220, info.Width);
        Assert.Equal(StatusCode.DataLoss, error.StatusCode);
        Assert.Contains($"The analysis store '{store}' is damaged", error.Status.Detail, StringComparison.Ordinal);
        await server.StopAsync();
    }
}
