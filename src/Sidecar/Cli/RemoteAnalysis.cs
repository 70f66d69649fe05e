using SlidePlugin.Engine.Analysis;
using SlidePlugin.Engine.IO;
using Grpc.Core;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;

namespace SlidePlugin.Sidecar.Cli;

/// <summary><c>analyze --server</c>: the same job on a running sidecar through the C# client SDK; the outputs are fetched with ExportAnalysis.</summary>
internal static class RemoteAnalysis
{
    public static async Task<int> RunAsync(Uri server, string slidePath, string? modelPath, double? mpp, AnalysisOptions options, string outDir,
        TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        var request = new AnalyzeSlideRequest { Path = slidePath, ModelPath = modelPath ?? string.Empty, TileSize = options.TileSize ?? 0, Overlap = options.Overlap, MinTissueFraction = options.MinTissueFraction };
        if (mpp is { } slideMpp)
        {
            request.MppOverride = slideMpp;
        }

        if (options.TargetMpp is { } target)
        {
            request.TargetMpp = target;
        }

        using global::Grpc.Net.Client.GrpcChannel channel = SlidePluginChannel.ForAddress(server.ToString());
        var client = new AnalysisService.AnalysisServiceClient(channel);
        try
        {
            Action<AnalysisEvent> progress = AnalyzeCommand.ProgressLines(stdout);
            Protos.V1.AnalysisResult result = await client.AnalyzeSlideToResultAsync(request,
                new Progress(p => progress(new AnalysisEvent.Scored([], p.TilesDone, p.TileCount))), cancellationToken).ConfigureAwait(false);

            string name = Path.Combine(outDir, Path.GetFileNameWithoutExtension(slidePath));
            Directory.CreateDirectory(outDir);
            stdout.WriteLine(AnalyzeCommand.PredictionLine(result.Header.Classes, result.Probabilities, result.PredictedClassName, result.Header.TileCount, result.Seconds, result.FromStore));
            foreach (AnalysisExportFormat format in AnalysisFiles.Formats)
            {
                string file = name + AnalysisFiles.SuffixOf(format);
                AtomicFile.WriteAllBytes(file, await client.ExportAnalysisBytesAsync(result.Header.Key, Services.ExportFormats.ToProto(format), cancellationToken).ConfigureAwait(false));
                stdout.WriteLine($"  {file}");
            }

            return ExitCodes.Success;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            stdout.WriteLine("Stopped: the server keeps the tiles scored so far; the same command resumes.");
            return ExitCodes.Interrupted;
        }
        catch (RpcException e)
        {
            stderr.WriteLine($"slideplugin: {server}: {e.StatusCode}: {e.Status.Detail}");
            return ExitCodes.Failure;
        }
        catch (InvalidDataException e)
        {
            stderr.WriteLine($"slideplugin: {server}: {e.Message}");
            return ExitCodes.Failure;
        }
    }

    /// <summary>Reports on the caller's thread, in order (<see cref="Progress{T}"/> would post to the thread pool).</summary>
    private sealed class Progress(Action<AnalysisProgress> report) : IProgress<AnalysisProgress>
    {
        public void Report(AnalysisProgress value) => report(value);
    }
}
