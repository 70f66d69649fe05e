using System.Diagnostics;

namespace SlidePlugin.Tests;

/// <summary>The result of running a program to its end.</summary>
internal sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError);

/// <summary>
/// Runs reference programs (Debian's python3 with torch/openslide/grpcio, node, our own executable)
/// and collects their output. A reference that cannot run fails the test with its stderr.
/// </summary>
internal static class ExternalProcess
{
    /// <summary>Debian's interpreter, where python3-torch, python3-openslide and python3-grpcio live.</summary>
    public static string ReferencePython =>
        Environment.GetEnvironmentVariable("SLIDEPLUGIN_REFERENCE_PYTHON") is { Length: > 0 } configured ? configured : "/usr/bin/python3";

    /// <summary>Runs <paramref name="fileName"/> and waits for it, up to <paramref name="timeout"/>.</summary>
    public static async Task<ProcessResult> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string?>? environment = null,
        TimeSpan? timeout = null)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        foreach ((string key, string? value) in environment ?? new Dictionary<string, string?>())
        {
            startInfo.Environment[key] = value;
        }

        using var process = Process.Start(startInfo) ?? throw new InvalidOperationException($"Could not start '{fileName}'.");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"'{fileName} {string.Join(' ', arguments)}' did not finish in time.");
        }

        return new ProcessResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs a script from tests/reference with Debian's python3; fails unless it exits 0. Returns its stdout.</summary>
    public static async Task<string> RunReferenceScriptAsync(string script, params string[] arguments)
    {
        string path = System.IO.Path.Combine(AppContext.BaseDirectory, "reference", script);
        ProcessResult result = await RunAsync(ReferencePython, [path, .. arguments]);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"Reference script {script} failed with exit code {result.ExitCode}:{Environment.NewLine}{result.StandardError}");
        }

        return result.StandardOutput;
    }

    /// <summary>
    /// Pixels as openslide-python reads them (tests/reference/openslide_pixels.py): one raw RGBA buffer per spec
    /// (<c>region:x,y,level,w,h</c>, <c>associated:NAME</c>, <c>thumbnail:SIZE</c>), and the script's stdout.
    /// </summary>
    public static async Task<(byte[][] Pixels, string Output)> ReferencePixelsAsync(string slidePath, params string[] specs)
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-pixels").FullName;
        try
        {
            string output = await RunReferenceScriptAsync("openslide_pixels.py", [slidePath, folder, .. specs]);
            return (specs.Select((_, i) => File.ReadAllBytes(System.IO.Path.Combine(folder, $"{i}.rgba"))).ToArray(), output);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
