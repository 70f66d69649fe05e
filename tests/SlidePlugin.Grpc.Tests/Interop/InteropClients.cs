using System.Text.Json;
using SlidePlugin.Tests;

namespace SlidePlugin.Grpc.Tests.Interop;

/// <summary>Runs one case of a real client (Python grpcio or Node grpc-js) against the fixture's server.</summary>
internal static class InteropClients
{
    private static string InteropFolder => Path.Combine(TestData.RepositoryRoot, "tests", "interop");

    public static Task<JsonElement> RunPythonAsync(InteropServerFixture server, string testCase) =>
        RunAsync(ExternalProcess.ReferencePython, [Path.Combine(InteropFolder, "python_client.py"), server.Target, server.DescriptorSetPath, testCase]);

    public static Task<JsonElement> RunNodeAsync(InteropServerFixture server, string testCase)
    {
        string nodeModules = Path.Combine(InteropFolder, "node_modules", "@grpc", "grpc-js");
        if (!Directory.Exists(nodeModules))
        {
            throw new DirectoryNotFoundException($"@grpc/grpc-js is not installed in {InteropFolder}: run 'npm ci --prefix tests/interop' (packaging/test.sh does).");
        }

        return RunAsync("node", [Path.Combine(InteropFolder, "node_client.js"), server.Target, Path.Combine(TestData.RepositoryRoot, "proto"),
            Path.Combine(TestData.RepositoryRoot, "tests", "SlidePlugin.Grpc.Tests", "Protos"), testCase]);
    }

    private static async Task<JsonElement> RunAsync(string program, string[] arguments)
    {
        ProcessResult result = await ExternalProcess.RunAsync(program, arguments, timeout: TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, $"{Path.GetFileName(arguments[0])} {arguments[^1]} failed ({result.ExitCode}):\n{result.StandardError}\n{result.StandardOutput}");
        using JsonDocument document = JsonDocument.Parse(result.StandardOutput);
        return document.RootElement.Clone();
    }
}
