using Google.Protobuf;
using Google.Protobuf.Reflection;
using Serilog;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Testing.V1;

namespace SlidePlugin.Grpc.Tests.Interop;

/// <summary>
/// One sidecar server (our gRPC layer on Kestrel) with the interop test service, health and reflection,
/// on a free loopback port, shared by the tests of a class. Also writes the descriptor set that the
/// Python client builds its messages from.
/// </summary>
public sealed class InteropServerFixture : IAsyncLifetime
{
    private SidecarServer? _server;

    public string Address { get; private set; } = string.Empty;

    /// <summary>host:port, for clients that take no scheme.</summary>
    public string Target => new Uri(Address).Authority;

    public string DescriptorSetPath { get; } = Path.Combine(Path.GetTempPath(), $"slideplugin-interop-{Guid.NewGuid():N}.pb");

    public async Task InitializeAsync()
    {
        WriteDescriptorSet();
        ILogger logger = new LoggerConfiguration().MinimumLevel.Warning().WriteTo.Console().CreateLogger();
        _server = SidecarServer.Create(
            new ServerSettings { Listen = "127.0.0.1:0" },
            logger,
            registry => new InteropTestServiceImpl().BindTo(registry));
        await _server.StartAsync();
        Address = _server.Addresses.Single();
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.StopAsync();
            await _server.DisposeAsync();
        }

        File.Delete(DescriptorSetPath);
    }

    /// <summary>Writes the descriptor set without starting a server (for the Python server fixture).</summary>
    internal void WriteDescriptorSetOnly() => WriteDescriptorSet();

    private void WriteDescriptorSet()
    {
        var set = new FileDescriptorSet();
        var seen = new HashSet<string>();
        void Add(FileDescriptor file)
        {
            if (!seen.Add(file.Name))
            {
                return;
            }

            foreach (FileDescriptor dependency in file.Dependencies)
            {
                Add(dependency); // dependencies first: Python's pool needs them before their importers
            }

            set.File.Add(FileDescriptorProto.Parser.ParseFrom(file.SerializedData));
        }

        Add(InteropTestReflection.Descriptor);
        Add(global::Grpc.Health.V1.HealthReflection.Descriptor);
        Add(global::Grpc.Reflection.V1.ReflectionReflection.Descriptor);
        File.WriteAllBytes(DescriptorSetPath, set.ToByteArray());
    }
}
