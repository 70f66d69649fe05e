using Serilog;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Sidecar.Services;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Services;

/// <summary>
/// A sidecar with the SlideService on a free loopback port. Roots: the shared slides folder, the folder
/// of generated slides, and a scratch folder holding symlinks (one to a slide in another root, one to a
/// file outside every root).
/// </summary>
public sealed class SlideServerFixture : IAsyncLifetime
{
    private SidecarServer? _server;

    public GrpcChannel Channel { get; private set; } = null!;

    public SlideServiceImpl Service { get; private set; } = null!;

    public SlideService.SlideServiceClient Client { get; private set; } = null!;

    public string ScratchRoot { get; } = Directory.CreateTempSubdirectory("slideplugin-roots").FullName;

    /// <summary>The 30k generated slide, as a path relative to its root.</summary>
    public string LargeSlide { get; } = Path.GetFileName(SyntheticSlides.Large());

    public async Task InitializeAsync()
    {
        File.CreateSymbolicLink(Path.Combine(ScratchRoot, "cmu-link.svs"), TestData.Path("slides", "CMU-1-Small-Region.svs"));
        File.CreateSymbolicLink(Path.Combine(ScratchRoot, "escape.svs"), "/etc/hostname");
        Directory.CreateSymbolicLink(Path.Combine(ScratchRoot, "etc-dir"), "/etc");
        var roots = new SlideRoots([TestData.Path("slides"), Path.GetDirectoryName(SyntheticSlides.Large())!, ScratchRoot]);
        Service = new SlideServiceImpl(roots, cacheCapacity: 4);
        ILogger logger = new LoggerConfiguration().MinimumLevel.Warning().WriteTo.Console().CreateLogger();
        _server = SidecarServer.Create(new ServerSettings { Listen = "127.0.0.1:0" }, logger, registry => Service.BindTo(registry));
        await _server.StartAsync();
        Channel = SlidePluginChannel.ForAddress(_server.Addresses.Single());
        Client = new SlideService.SlideServiceClient(Channel);
    }

    public async Task DisposeAsync()
    {
        Channel.Dispose();
        if (_server is not null)
        {
            await _server.StopAsync();
            await _server.DisposeAsync();
        }

        Service?.Dispose();
        Directory.Delete(ScratchRoot, recursive: true);
    }
}
