using Grpc.Core;
using SlidePlugin.Protos.V1;

namespace SlidePlugin.Client;

/// <summary>What users do around AnalyzeSlide and ExportAnalysis: follow progress to the result, fetch exports whole or into a file.</summary>
public static class AnalysisClientExtensions
{
    /// <summary>
    /// Runs (or joins, or reads from the store) an analysis and returns its result; <paramref name="progress"/> sees every
    /// progress event. For the tiles themselves, read <c>AnalyzeSlide(request).ResponseStream.ReadAllAsync()</c>.
    /// </summary>
    /// <exception cref="RpcException">The server's status, e.g. NOT_FOUND for a slide outside the roots.</exception>
    /// <exception cref="InvalidDataException">The stream ended without a result.</exception>
    public static async Task<AnalysisResult> AnalyzeSlideToResultAsync(this AnalysisService.AnalysisServiceClient client, AnalyzeSlideRequest request,
        IProgress<AnalysisProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        using AsyncServerStreamingCall<AnalyzeSlideResponse> call = client.AnalyzeSlide(request, cancellationToken: cancellationToken);
        AnalysisResult? result = null;
        await foreach (AnalyzeSlideResponse response in call.ResponseStream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (response.EventCase == AnalyzeSlideResponse.EventOneofCase.Progress)
            {
                progress?.Report(response.Progress);
            }
            else if (response.EventCase == AnalyzeSlideResponse.EventOneofCase.Result)
            {
                result = response.Result;
            }
        }

        return result ?? throw new InvalidDataException("The AnalyzeSlide stream ended without a result.");
    }

    /// <summary>A stored analysis exported in <paramref name="format"/>, all chunks joined.</summary>
    public static async Task<byte[]> ExportAnalysisBytesAsync(this AnalysisService.AnalysisServiceClient client, string key, ExportFormat format, CancellationToken cancellationToken = default)
    {
        using var bytes = new MemoryStream();
        await ExportAnalysisAsync(client, key, format, bytes, cancellationToken).ConfigureAwait(false);
        return bytes.ToArray();
    }

    /// <summary>
    /// A stored analysis exported in <paramref name="format"/> to <paramref name="path"/>: written beside it under a temporary
    /// name and renamed when complete, so a failed or cancelled export leaves no partial file.
    /// </summary>
    public static async Task ExportAnalysisToFileAsync(this AnalysisService.AnalysisServiceClient client, string key, ExportFormat format, string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string temporary = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                await ExportAnalysisAsync(client, key, format, file, cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    private static async Task ExportAnalysisAsync(AnalysisService.AnalysisServiceClient client, string key, ExportFormat format, Stream destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        using AsyncServerStreamingCall<ExportAnalysisResponse> call = client.ExportAnalysis(new ExportAnalysisRequest { Key = key, Format = format }, cancellationToken: cancellationToken);
        await foreach (ExportAnalysisResponse chunk in call.ResponseStream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            await destination.WriteAsync(chunk.Data.Memory, cancellationToken).ConfigureAwait(false);
        }
    }
}
