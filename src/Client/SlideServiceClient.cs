using Google.Protobuf;
using Google.Protobuf.Reflection;
using SlidePlugin.Protos.V1;

namespace SlidePlugin.Grpc;

/// <summary>
/// Typed client of <c>slideplugin.v1.SlideService</c> over a <see cref="GrpcChannel"/>, shaped like a
/// grpc-dotnet generated client: one <c>...Async</c> method per RPC. Failures arrive as <see cref="RpcException"/>.
/// </summary>
public sealed class SlideServiceClient(GrpcChannel channel)
{
    private static readonly ServiceDescriptor Service = SlideServiceReflection.Descriptor.FindTypeByName<ServiceDescriptor>("SlideService");

    private static readonly Method<GetSlideInfoRequest, GetSlideInfoResponse> GetSlideInfoMethod = Find<GetSlideInfoRequest, GetSlideInfoResponse>("GetSlideInfo");
    private static readonly Method<GetThumbnailRequest, GetThumbnailResponse> GetThumbnailMethod = Find<GetThumbnailRequest, GetThumbnailResponse>("GetThumbnail");
    private static readonly Method<GetAssociatedImageRequest, GetAssociatedImageResponse> GetAssociatedImageMethod = Find<GetAssociatedImageRequest, GetAssociatedImageResponse>("GetAssociatedImage");
    private static readonly Method<ReadRegionRequest, ReadRegionResponse> ReadRegionMethod = Find<ReadRegionRequest, ReadRegionResponse>("ReadRegion");
    private static readonly Method<DetectTissueRequest, DetectTissueResponse> DetectTissueMethod = Find<DetectTissueRequest, DetectTissueResponse>("DetectTissue");
    private static readonly Method<StreamTilesRequest, StreamTilesResponse> StreamTilesMethod = Find<StreamTilesRequest, StreamTilesResponse>("StreamTiles");
    private static readonly Method<GetDeepZoomInfoRequest, GetDeepZoomInfoResponse> GetDeepZoomInfoMethod = Find<GetDeepZoomInfoRequest, GetDeepZoomInfoResponse>("GetDeepZoomInfo");
    private static readonly Method<GetDeepZoomTileRequest, GetDeepZoomTileResponse> GetDeepZoomTileMethod = Find<GetDeepZoomTileRequest, GetDeepZoomTileResponse>("GetDeepZoomTile");

    private readonly GrpcChannel _channel = channel ?? throw new ArgumentNullException(nameof(channel));

    /// <summary>Geometry, resolution, bounds, associated images and properties of a slide.</summary>
    public AsyncUnaryCall<GetSlideInfoResponse> GetSlideInfoAsync(GetSlideInfoRequest request, CallOptions options = default) =>
        _channel.AsyncUnaryCall(GetSlideInfoMethod, request, options);

    /// <summary>A thumbnail of the whole slide.</summary>
    public AsyncUnaryCall<GetThumbnailResponse> GetThumbnailAsync(GetThumbnailRequest request, CallOptions options = default) =>
        _channel.AsyncUnaryCall(GetThumbnailMethod, request, options);

    /// <summary>An associated image (label, macro, ...).</summary>
    public AsyncUnaryCall<GetAssociatedImageResponse> GetAssociatedImageAsync(GetAssociatedImageRequest request, CallOptions options = default) =>
        _channel.AsyncUnaryCall(GetAssociatedImageMethod, request, options);

    /// <summary>A region of one level (at most 1 MiB pixels).</summary>
    public AsyncUnaryCall<ReadRegionResponse> ReadRegionAsync(ReadRegionRequest request, CallOptions options = default) =>
        _channel.AsyncUnaryCall(ReadRegionMethod, request, options);

    /// <summary>Tissue mask and QuPath GeoJSON.</summary>
    public AsyncUnaryCall<DetectTissueResponse> DetectTissueAsync(DetectTissueRequest request, CallOptions options = default) =>
        _channel.AsyncUnaryCall(DetectTissueMethod, request, options);

    /// <summary>Tiles at a resolution: the grid first, then one tile a message.</summary>
    public AsyncServerStreamingCall<StreamTilesResponse> StreamTiles(StreamTilesRequest request, CallOptions options = default) =>
        _channel.AsyncServerStreamingCall(StreamTilesMethod, request, options);

    /// <summary>The .dzi and level geometry of a Deep Zoom view.</summary>
    public AsyncUnaryCall<GetDeepZoomInfoResponse> GetDeepZoomInfoAsync(GetDeepZoomInfoRequest request, CallOptions options = default) =>
        _channel.AsyncUnaryCall(GetDeepZoomInfoMethod, request, options);

    /// <summary>One Deep Zoom tile.</summary>
    public AsyncUnaryCall<GetDeepZoomTileResponse> GetDeepZoomTileAsync(GetDeepZoomTileRequest request, CallOptions options = default) =>
        _channel.AsyncUnaryCall(GetDeepZoomTileMethod, request, options);

    private static Method<TRequest, TResponse> Find<TRequest, TResponse>(string name)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new() =>
        Methods.FromDescriptor<TRequest, TResponse>(Service.FindMethodByName(name));
}
