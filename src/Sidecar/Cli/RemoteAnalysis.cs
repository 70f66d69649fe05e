using SlidePlugin.Engine.Analysis;
using SlidePlugin.Engine.IO;
using SlidePlugin.Grpc;
using SlidePlugin.Protos.V1;

namespace SlidePlugin.Sidecar.Cli;

/// <summary><c>analyze --server</c>: the same job on a running sidecar through the C# client SDK; the outputs are fetched with ExportAnalysis.</summary>
internal static class RemoteAnalysis
{
    private static readonly (ExportFormat Format, string Suffix)[] Files =
    [
        (ExportFormat.Geojson, ".geojson"), (ExportFormat.Csv, ".tiles.csv"), (ExportFormat.HeatmapPng, ".heatmap.png"),
        (ExportFormat.AttentionPng, ".attention.png"), (ExportFormat.SummaryJson, ".summary.json"),
    ];

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

        using var channel = GrpcChannel.ForAddress(server.ToString());
        var client = new AnalysisServiceClient(channel);
        try
        {
            using AsyncServerStreamingCall<AnalyzeSlideResponse> call = client.AnalyzeSlide(request, new CallOptions(CancellationToken: cancellationToken));
            Action<AnalysisEvent> progress = AnalyzeCommand.ProgressLines(stdout);
            Protos.V1.AnalysisResult? result = null;
            while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
            {
                AnalyzeSlideResponse response = call.ResponseStream.Current;
                if (response.EventCase == AnalyzeSlideResponse.EventOneofCase.Progress)
                {
                    progress(new AnalysisEvent.Scored([], response.Progress.TilesDone, response.Progress.TileCount));
                }
                else if (response.EventCase == AnalyzeSlideResponse.EventOneofCase.Result)
                {
                    result = response.Result;
                }
            }

            if (result is null)
            {
                stderr.WriteLine("slideplugin: the server ended the analysis without a result.");
                return ExitCodes.Failure;
            }

            string name = Path.Combine(outDir, Path.GetFileNameWithoutExtension(slidePath));
            Directory.CreateDirectory(outDir);
            stdout.WriteLine(AnalyzeCommand.PredictionLine(result.Header.Classes, result.Probabilities, result.PredictedClassName, result.Header.TileCount, result.Seconds, result.FromStore));
            foreach ((ExportFormat format, string suffix) in Files)
            {
                AtomicFile.WriteAllBytes(name + suffix, await client.ExportAnalysisBytesAsync(result.Header.Key, format, cancellationToken).ConfigureAwait(false));
                stdout.WriteLine($"  {name + suffix}");
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
    }
}
