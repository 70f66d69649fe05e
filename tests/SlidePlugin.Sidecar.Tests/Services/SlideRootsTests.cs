using Google.Protobuf;
using Serilog;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tensors;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Sidecar.Services;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Services;

/// <summary>
/// The roots under attack: a root whose folders the client can change (<c>root/dir/s.svs</c>, a copy of CMU made in
/// the test) and a folder outside it with another slide (<c>outside/s.svs</c>, a copy of small.svs).
/// </summary>
public sealed class SlideRootsTests : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("slideplugin-roots").FullName;

    public SlideRootsTests()
    {
        Directory.CreateDirectory(Path.Combine(_scratch, "root", "dir"));
        Directory.CreateDirectory(Path.Combine(_scratch, "outside"));
        File.Copy(TestData.Path("slides", "CMU-1-Small-Region.svs"), Path.Combine(_scratch, "root", "dir", "s.svs"));
        File.Copy(TestData.Path("slides", "small.svs"), Path.Combine(_scratch, "outside", "s.svs"));
    }

    private string Root => Path.Combine(_scratch, "root");

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Fact]
    public async Task Resolve_FifoInsideTheRoot_InvalidArgumentInsteadOfBlocking()
    {
        string fifo = Path.Combine(Root, "fifo.svs");
        Assert.Equal(0, (await ExternalProcess.RunAsync("mkfifo", [fifo])).ExitCode);
        var roots = new SlideRoots([Root]);

        Task<RpcException> opening = Task.Run(() => Assert.Throws<RpcException>(() => roots.OpenSlide("fifo.svs")));
        RpcException error = await opening.WaitAsync(TimeSpan.FromSeconds(10)); // times out where the open blocks

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("not a regular file", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_FolderSwappedForASymlinkOutWhileOpening_PermissionDeniedAndNothingKept()
    {
        var roots = new SlideRoots([Root]);
        Slide? escaped = null;

        RpcException error = Assert.Throws<RpcException>(() => roots.Open("dir/s.svs", (path, _) =>
        {
            // The race: the check saw root/dir; before the open, dir becomes a link to the outside folder.
            SwapDirForLinkOut();
            escaped = Slide.Open(path);
            return escaped;
        }, slide => slide.Dispose()));

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Contains("changed while it was opened", error.Status.Detail, StringComparison.Ordinal);
        Assert.Throws<ObjectDisposedException>(() => escaped!.ReadRegion(0, 0, 0, 1, 1));
    }

    [Fact]
    public async Task ExportAnalysis_SlideFolderSwappedForASymlinkOutAfterTheAnalysis_PermissionDenied()
    {
        string model = Path.Combine(_scratch, "model.safetensors");
        var spec = new AttentionMilSpec { Attention = MilAttention.Gated, PatchSize = 32, Channels = 3 };
        ModelCheckpoint.Save(model, new AttentionMil(spec, new TensorRandom(5)),
            new ModelCard { Name = "test-gated", Spec = spec, Classes = ["benign", "malignant"], Mpp = 0.5, InputMean = [0.5f], InputStd = [0.5f] });
        using var service = new AnalysisServiceImpl(new SlideRoots([Root]), Path.Combine(_scratch, "work"), model);
        ILogger logger = new LoggerConfiguration().MinimumLevel.Warning().CreateLogger();
        await using SidecarServer server = SidecarServer.Create(new ServerSettings { Listen = "127.0.0.1:0" }, logger, service.BindTo);
        await server.StartAsync();
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());
        var client = new AnalysisService.AnalysisServiceClient(channel);
        string key = "";
        using (AsyncServerStreamingCall<AnalyzeSlideResponse> call = client.AnalyzeSlide(new AnalyzeSlideRequest { Path = "dir/s.svs" }))
        {
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
                key = call.ResponseStream.Current.Result?.Header.Key ?? key;
            }
        }

        SwapDirForLinkOut();
        RpcException error = await Assert.ThrowsAsync<RpcException>(() => client.ExportAnalysisBytesAsync(key, ExportFormat.HeatmapPng));

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        await server.StopAsync();
    }

    private void SwapDirForLinkOut()
    {
        string dir = Path.Combine(Root, "dir");
        Directory.Move(dir, Path.Combine(_scratch, "moved-away"));
        Directory.CreateSymbolicLink(dir, Path.Combine(_scratch, "outside"));
    }
}
