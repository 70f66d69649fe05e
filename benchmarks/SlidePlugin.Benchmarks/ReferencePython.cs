using System.Diagnostics;
using System.Text.Json;

namespace SlidePlugin.Benchmarks;

/// <summary>Runs a reference script (copied beside the benchmark) with Debian's python3 and parses the JSON it prints.</summary>
internal static class ReferencePython
{
    public static async Task<JsonDocument> RunAsync(string script, params string[] arguments)
    {
        var startInfo = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        startInfo.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, script));
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(startInfo)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return process.ExitCode == 0
            ? JsonDocument.Parse(stdout)
            : throw new InvalidOperationException($"{script} failed with exit code {process.ExitCode}: {await stderr}");
    }
}
