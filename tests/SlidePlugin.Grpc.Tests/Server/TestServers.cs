using Serilog;
using SlidePlugin.Grpc.Tests.Interop;
using SlidePlugin.Sidecar.Hosting;

namespace SlidePlugin.Grpc.Tests.Server;

/// <summary>Starts a sidecar server with the interop service and the given settings, for one test.</summary>
internal static class TestServers
{
    public static async Task<SidecarServer> StartAsync(ServerSettings settings)
    {
        ILogger logger = new LoggerConfiguration().MinimumLevel.Warning().WriteTo.Console().CreateLogger();
        SidecarServer server = SidecarServer.Create(settings, logger, registry => new InteropTestServiceImpl().BindTo(registry));
        await server.StartAsync();
        return server;
    }
}
