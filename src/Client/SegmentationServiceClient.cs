using SlidePlugin.Protos.V1;

namespace SlidePlugin.Grpc;

/// <summary>A whole <c>Segment</c> call, its chunks joined: the header, each class's probability PNG, the label PNG, the GeoJSON and the summary.</summary>
public sealed record SegmentOutputs(SegmentHeader Header, IReadOnlyList<byte[]> ClassHeatmapPngs, byte[] LabelPng, string GeoJson, SegmentSummary Summary);

/// <summary>
/// Typed client of <c>slideplugin.v1.SegmentationService</c> over a <see cref="GrpcChannel"/>, shaped like a
/// grpc-dotnet generated client. Failures arrive as <see cref="RpcException"/>.
/// </summary>
public sealed class SegmentationServiceClient(GrpcChannel channel)
{
    private static readonly Method<SegmentRequest, SegmentResponse> SegmentMethod =
        Methods.FromService<SegmentRequest, SegmentResponse>(SegmentationServiceReflection.Descriptor.Services[0], "Segment");

    private readonly GrpcChannel _channel = channel ?? throw new ArgumentNullException(nameof(channel));

    /// <summary>Segments a slide region or an image: header, output chunks, summary.</summary>
    public AsyncServerStreamingCall<SegmentResponse> Segment(SegmentRequest request, CallOptions options = default) =>
        _channel.AsyncServerStreamingCall(SegmentMethod, request, options);

    /// <summary>Runs <see cref="Segment"/> to the end and joins each output's chunks.</summary>
    /// <exception cref="InvalidDataException">The stream did not hold a header, every output and a summary.</exception>
    public async Task<SegmentOutputs> SegmentAsync(SegmentRequest request, CancellationToken cancellationToken = default)
    {
        using AsyncServerStreamingCall<SegmentResponse> call = Segment(request, new CallOptions(CancellationToken: cancellationToken));
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

/// <summary>Typed client of <c>slideplugin.v1.DatasetService</c>: patch cutting, label-mask statistics and palette conversions.</summary>
public sealed class DatasetServiceClient(GrpcChannel channel)
{
    private static readonly Google.Protobuf.Reflection.ServiceDescriptor Service = SegmentationServiceReflection.Descriptor.Services[1];
    private static readonly Method<CutPatchesRequest, CutPatchesResponse> CutPatchesMethod = Methods.FromService<CutPatchesRequest, CutPatchesResponse>(Service, "CutPatches");
    private static readonly Method<ComputeClassStatisticsRequest, ComputeClassStatisticsResponse> StatisticsMethod = Methods.FromService<ComputeClassStatisticsRequest, ComputeClassStatisticsResponse>(Service, "ComputeClassStatistics");
    private static readonly Method<ColorMaskRequest, ColorMaskResponse> ColorMethod = Methods.FromService<ColorMaskRequest, ColorMaskResponse>(Service, "ColorMask");
    private static readonly Method<MaskToCodesRequest, MaskToCodesResponse> CodesMethod = Methods.FromService<MaskToCodesRequest, MaskToCodesResponse>(Service, "MaskToCodes");
    private static readonly Method<MergeClassesRequest, MergeClassesResponse> MergeMethod = Methods.FromService<MergeClassesRequest, MergeClassesResponse>(Service, "MergeClasses");

    private readonly GrpcChannel _channel = channel ?? throw new ArgumentNullException(nameof(channel));

    /// <summary>An image (or slide region) and its mask cut into patches, one per message, row-major.</summary>
    public AsyncServerStreamingCall<CutPatchesResponse> CutPatches(CutPatchesRequest request, CallOptions options = default) =>
        _channel.AsyncServerStreamingCall(CutPatchesMethod, request, options);

    /// <summary>Pixel counts per class of a code mask.</summary>
    public AsyncUnaryCall<ComputeClassStatisticsResponse> ComputeClassStatisticsAsync(ComputeClassStatisticsRequest request, CallOptions options = default) =>
        _channel.AsyncUnaryCall(StatisticsMethod, request, options);

    /// <summary>A code mask as an indexed PNG in the table's colours.</summary>
    public AsyncUnaryCall<ColorMaskResponse> ColorMaskAsync(ColorMaskRequest request, CallOptions options = default) =>
        _channel.AsyncUnaryCall(ColorMethod, request, options);

    /// <summary>A coloured mask back to codes.</summary>
    public AsyncUnaryCall<MaskToCodesResponse> MaskToCodesAsync(MaskToCodesRequest request, CallOptions options = default) =>
        _channel.AsyncUnaryCall(CodesMethod, request, options);

    /// <summary>A mask with classes folded together.</summary>
    public AsyncUnaryCall<MergeClassesResponse> MergeClassesAsync(MergeClassesRequest request, CallOptions options = default) =>
        _channel.AsyncUnaryCall(MergeMethod, request, options);
}
