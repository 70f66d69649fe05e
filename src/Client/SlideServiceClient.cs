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

    private static readonly Method<GetSlideInfoRequest, GetSlideInfoResponse> GetSlideInfoMethod = Methods.FromService<GetSlideInfoRequest, GetSlideInfoResponse>(Service, "GetSlideInfo");
    private static readonly Method<GetThumbnailRequest, GetThumbnailResponse> GetThumbnailMethod = Methods.FromService<GetThumbnailRequest, GetThumbnailResponse>(Service, "GetThumbnail");
    private static readonly Method<GetAssociatedImageRequest, GetAssociatedImageResponse> GetAssociatedImageMethod = Methods.FromService<GetAssociatedImageRequest, GetAssociatedImageResponse>(Service, "GetAssociatedImage");
    private static readonly Method<ReadRegionRequest, ReadRegionResponse> ReadRegionMethod = Methods.FromService<ReadRegionRequest, ReadRegionResponse>(Service, "ReadRegion");
    private static readonly Method<DetectTissueRequest, DetectTissueResponse> DetectTissueMethod = Methods.FromService<DetectTissueRequest, DetectTissueResponse>(Service, "DetectTissue");
    private static readonly Method<StreamTilesRequest, StreamTilesResponse> StreamTilesMethod = Methods.FromService<StreamTilesRequest, StreamTilesResponse>(Service, "StreamTiles");
    private static readonly Method<GetDeepZoomInfoRequest, GetDeepZoomInfoResponse> GetDeepZoomInfoMethod = Methods.FromService<GetDeepZoomInfoRequest, GetDeepZoomInfoResponse>(Service, "GetDeepZoomInfo");
    private static readonly Method<GetDeepZoomTileRequest, GetDeepZoomTileResponse> GetDeepZoomTileMethod = Methods.FromService<GetDeepZoomTileRequest, GetDeepZoomTileResponse>(Service, "GetDeepZoomTile");

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
}
