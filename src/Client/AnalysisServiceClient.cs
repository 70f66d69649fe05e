using SlidePlugin.Protos.V1;

namespace SlidePlugin.Grpc;

/// <summary>
/// Typed client of <c>slideplugin.v1.AnalysisService</c> over a <see cref="GrpcChannel"/>, shaped like a grpc-dotnet
/// generated client. Failures arrive as <see cref="RpcException"/>.
/// </summary>
public sealed class AnalysisServiceClient(GrpcChannel channel)
{
    private static readonly Google.Protobuf.Reflection.ServiceDescriptor Service = AnalysisServiceReflection.Descriptor.Services[0];
    private static readonly Method<AnalyzeSlideRequest, AnalyzeSlideResponse> AnalyzeSlideMethod = Methods.FromService<AnalyzeSlideRequest, AnalyzeSlideResponse>(Service, "AnalyzeSlide");
    private static readonly Method<ScoreBagRequest, ScoreBagResponse> ScoreBagMethod = Methods.FromService<ScoreBagRequest, ScoreBagResponse>(Service, "ScoreBag");
    private static readonly Method<GetAnalysisRequest, GetAnalysisResponse> GetAnalysisMethod = Methods.FromService<GetAnalysisRequest, GetAnalysisResponse>(Service, "GetAnalysis");
    private static readonly Method<ListAnalysesRequest, ListAnalysesResponse> ListAnalysesMethod = Methods.FromService<ListAnalysesRequest, ListAnalysesResponse>(Service, "ListAnalyses");
    private static readonly Method<ExportAnalysisRequest, ExportAnalysisResponse> ExportAnalysisMethod = Methods.FromService<ExportAnalysisRequest, ExportAnalysisResponse>(Service, "ExportAnalysis");

    private readonly GrpcChannel _channel = channel ?? throw new ArgumentNullException(nameof(channel));

    /// <summary>Analyses a slide: header, progress batches, final tiles, result. Cancelling stops it and keeps what was scored.</summary>
    public AsyncServerStreamingCall<AnalyzeSlideResponse> AnalyzeSlide(AnalyzeSlideRequest request, CallOptions options = default) =>
        _channel.AsyncServerStreamingCall(AnalyzeSlideMethod, request, options);

    /// <summary>Scores a bag of the client's patches: write requests, complete, read the one response.</summary>
    public AsyncDuplexStreamingCall<ScoreBagRequest, ScoreBagResponse> ScoreBag(CallOptions options = default) =>
        _channel.AsyncDuplexStreamingCall(ScoreBagMethod, options);

    /// <summary>A finished analysis from the store.</summary>
    public AsyncUnaryCall<GetAnalysisResponse> GetAnalysisAsync(GetAnalysisRequest request, CallOptions options = default) =>
        _channel.AsyncUnaryCall(GetAnalysisMethod, request, options);

    /// <summary>Every stored analysis.</summary>
    public AsyncUnaryCall<ListAnalysesResponse> ListAnalysesAsync(ListAnalysesRequest request, CallOptions options = default) =>
        _channel.AsyncUnaryCall(ListAnalysesMethod, request, options);

    /// <summary>An export in chunks.</summary>
    public AsyncServerStreamingCall<ExportAnalysisResponse> ExportAnalysis(ExportAnalysisRequest request, CallOptions options = default) =>
        _channel.AsyncServerStreamingCall(ExportAnalysisMethod, request, options);

    /// <summary>An export's bytes, its chunks joined.</summary>
    public async Task<byte[]> ExportAnalysisBytesAsync(string key, ExportFormat format, CancellationToken cancellationToken = default)
    {
        using AsyncServerStreamingCall<ExportAnalysisResponse> call = ExportAnalysis(new ExportAnalysisRequest { Key = key, Format = format }, new CallOptions(CancellationToken: cancellationToken));
        using var bytes = new MemoryStream();
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            call.ResponseStream.Current.Data.WriteTo(bytes);
        }

        return bytes.ToArray();
    }
}
