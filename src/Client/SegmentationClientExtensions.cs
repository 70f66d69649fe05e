using Grpc.Core;
using SlidePlugin.Protos.V1;

namespace SlidePlugin.Client;

/// <summary>A whole <c>Segment</c> call, its chunks joined: the header, each class's probability PNG, the label PNG, the GeoJSON and the summary.</summary>
public sealed record SegmentOutputs(SegmentHeader Header, IReadOnlyList<byte[]> ClassHeatmapPngs, byte[] LabelPng, string GeoJson, SegmentSummary Summary);

/// <summary>Segment as one result: the stream's chunks joined per output.</summary>
public static class SegmentationClientExtensions
{
    /// <summary>Runs Segment to the end and joins each output's chunks.</summary>
    /// <exception cref="InvalidDataException">The stream did not hold a header, every output and a summary.</exception>
    public static async Task<SegmentOutputs> SegmentToOutputsAsync(this SegmentationService.SegmentationServiceClient client, SegmentRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        using AsyncServerStreamingCall<SegmentResponse> call = client.Segment(request, cancellationToken: cancellationToken);
        SegmentHeader? header = null;
        SegmentSummary? summary = null;
        var outputs = new Dictionary<(SegmentOutput, int), MemoryStream>();
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            SegmentResponse response = call.ResponseStream.Current;
            switch (response.EventCase)
            {
                case SegmentResponse.EventOneofCase.Header:
                    header = response.Header;
                    break;
                case SegmentResponse.EventOneofCase.Chunk:
                    SegmentChunk chunk = response.Chunk;
                    if (!outputs.TryGetValue((chunk.Output, chunk.ClassIndex), out MemoryStream? bytes))
                    {
                        outputs[(chunk.Output, chunk.ClassIndex)] = bytes = new MemoryStream();
                    }

                    chunk.Data.WriteTo(bytes);
                    break;
                case SegmentResponse.EventOneofCase.Summary:
                    summary = response.Summary;
                    break;
            }
        }

        if (header is null || summary is null)
        {
            throw new InvalidDataException("The Segment stream ended without its header or summary.");
        }

        byte[] Take(SegmentOutput output, int index) => outputs.TryGetValue((output, index), out MemoryStream? s)
            ? s.ToArray()
            : throw new InvalidDataException($"The Segment stream holds no {output} for class {index}.");
        return new SegmentOutputs(header, [.. header.Classes.Select(c => Take(SegmentOutput.ClassHeatmapPng, c.Index))], Take(SegmentOutput.LabelPng, 0),
            System.Text.Encoding.UTF8.GetString(Take(SegmentOutput.Geojson, 0)), summary);
    }
}
