using System.Diagnostics;
using System.Text.Json;

namespace SlidePlugin.Benchmarks;

/// <summary>Runs a reference script (copied beside the benchmark) with Debian's python3 and parses the JSON it prints.</summary>
internal static class ReferencePython
{
    public static Task<JsonDocument> RunAsync(string script, params string[] arguments) =>
        RunJsonAsync("/usr/bin/python3", [Path.Combine(AppContext.BaseDirectory, script), .. arguments]);

    /// <summary>Runs <paramref name="program"/> (a reference script or a worker process of ours) and parses the JSON it prints.</summary>
    public static async Task<JsonDocument> RunJsonAsync(string program, params string[] arguments)
    {
        var startInfo = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
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
            : throw new InvalidOperationException($"{string.Join(' ', arguments.Take(1).Prepend(program))} failed with exit code {process.ExitCode}: {await stderr}");
    }
}
