using System.Diagnostics;
using SlidePlugin.Grpc.Tests.Interop;
using SlidePlugin.Tests;

namespace SlidePlugin.Grpc.Tests.Client;

/// <summary>A Python grpcio server with the interop service, for our client (reverse interop).</summary>
public sealed class PythonServerFixture : IAsyncLifetime
{
    private readonly InteropServerFixture _descriptors = new();
    private Process? _process;

    public string Address { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        // Only the descriptor set of the interop fixture is needed; its server is not started.
        _descriptors.WriteDescriptorSetOnly();
        var startInfo = new ProcessStartInfo(ExternalProcess.ReferencePython)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        startInfo.ArgumentList.Add(Path.Combine(TestData.RepositoryRoot, "tests", "interop", "python_server.py"));
        startInfo.ArgumentList.Add(_descriptors.DescriptorSetPath);
        _process = Process.Start(startInfo) ?? throw new InvalidOperationException("python3 did not start");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        string? line = await _process.StandardOutput.ReadLineAsync(timeout.Token);
        if (line is null || !line.StartsWith("PORT ", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"python_server.py did not report its port: {await _process.StandardError.ReadToEndAsync(timeout.Token)}");
        }

        Address = $"http://127.0.0.1:{line[5..]}";
    }

    public async Task DisposeAsync()
    {
        if (_process is not null)
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.Dispose();
        }

        await _descriptors.DisposeAsync();
    }
}

/// <summary>Reverse interop: our client against a real gRPC server (Python grpcio).</summary>
public sealed class ReverseInteropTests(PythonServerFixture server) : ClientConformanceTests, IClassFixture<PythonServerFixture>, IDisposable
{
    private readonly GrpcChannel _channel = SlidePluginChannel.ForAddress(server.Address);

    private protected override GrpcChannel Channel => _channel;

    public void Dispose() => _channel.Dispose();
}
