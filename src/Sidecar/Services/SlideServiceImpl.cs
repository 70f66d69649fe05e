using Grpc.Core;
using Google.Protobuf;
using SlidePlugin.Engine.Annotations;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Grpc;
using EngineSlideResolution = SlidePlugin.Engine.Slides.SlideResolution;
using ProtoSlideResolution = SlidePlugin.Protos.V1.SlideResolution;

using Contract = SlidePlugin.Protos.V1;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// <c>slideplugin.v1.SlideService</c>: slides under the slide roots, opened through a shared
/// <see cref="SlideCache"/>. Engine failures become statuses in one place (<see cref="SlideStatus"/>);
/// a failed call never takes the server or other slides with it.
/// </summary>
public sealed class SlideServiceImpl : Contract.SlideService.SlideServiceBase, IDisposable
{
    /// <summary>Largest response payload: the 4 MiB default receive limit of gRPC clients, less room for the envelope.</summary>
    public const int MaxResponseBytes = (4 * 1024 * 1024) - (16 * 1024);

    /// <summary>Largest ReadRegion in pixels (1024 x 1024): 4 MiB as RGBA.</summary>
    public const long MaxRegionPixels = 1024 * 1024;

    /// <summary>Largest thumbnail or tile edge a request may ask for.</summary>
    public const int MaxImageEdge = 2048;

    private const int DefaultQuality = 90;

    /// <summary>JPEG's largest width or height (its header holds 16 bits).</summary>
    private const int MaxJpegEdge = 65535;
    private const int DefaultThumbnailSize = 512;
    private const int DefaultTileSize = 256;
    private const double DefaultMinTissueFraction = 0.5;

    private readonly SlideRoots _roots;
    private readonly SlideCache _cache;
    private readonly int _tileLookahead;
    private readonly WorkLimiter _streams;
    private readonly WorkLimiter _tissue;
    private long _tilesRead;

    /// <summary>Tile streams that may run at once by default (as many more may wait).</summary>
    public const int DefaultMaxStreams = 16;

    /// <summary>
    /// Creates the service over <paramref name="roots"/>, keeping at most <paramref name="cacheCapacity"/> slides open,
    /// streaming tiles to at most <paramref name="maxStreams"/> calls at once (as many more wait, the rest get
    /// RESOURCE_EXHAUSTED) and detecting tissue for one call per core at a time.
    /// </summary>
    public SlideServiceImpl(SlideRoots roots, int cacheCapacity = 16, int tileLookahead = 0, int maxStreams = DefaultMaxStreams)
    {
        ArgumentNullException.ThrowIfNull(roots);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxStreams, 1);
        _roots = roots;
        _cache = new SlideCache(cacheCapacity);
        _streams = new WorkLimiter("tile streams", maxStreams, maxStreams);
        _tissue = new WorkLimiter("tissue detections", Environment.ProcessorCount, 4 * Environment.ProcessorCount);
        // Enough tiles in flight to keep every core busy reading and encoding, few enough to stay small.
        _tileLookahead = tileLookahead > 0 ? tileLookahead : Math.Max(4, 2 * Environment.ProcessorCount);
    }

    /// <summary>Tiles read from slides by StreamTiles since the service started.</summary>
    public long TilesRead => Interlocked.Read(ref _tilesRead);

    /// <summary>Binds the service's methods.</summary>
    public void BindTo(GrpcServiceRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.Add(this);
    }

    /// <inheritdoc />
    public override Task<GetSlideInfoResponse> GetSlideInfo(GetSlideInfoRequest request, ServerCallContext context) =>
        Run(request.Path, context, slide => GetSlideInfo(slide, request));

    /// <inheritdoc />
    public override Task<GetThumbnailResponse> GetThumbnail(GetThumbnailRequest request, ServerCallContext context) =>
        Run(request.Path, context, slide => GetThumbnail(slide, request));

    /// <inheritdoc />
    public override Task<GetAssociatedImageResponse> GetAssociatedImage(GetAssociatedImageRequest request, ServerCallContext context) =>
        Run(request.Path, context, slide => new GetAssociatedImageResponse
        {
            Image = Encode(slide.ReadAssociatedImage(request.Name), request.Encoding, slide.BackgroundColor),
        });

    /// <inheritdoc />
    public override Task<ReadRegionResponse> ReadRegion(ReadRegionRequest request, ServerCallContext context) =>
        Run(request.Path, context, slide => ReadRegion(slide, request));

    /// <inheritdoc />
    public override async Task<DetectTissueResponse> DetectTissue(DetectTissueRequest request, ServerCallContext context)
    {
        using IDisposable slot = await _tissue.EnterAsync(context.CancellationToken).ConfigureAwait(false);
        return await Run(request.Path, context, slide => DetectTissue(slide, request)).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override Task StreamTiles(StreamTilesRequest request, IServerStreamWriter<StreamTilesResponse> responseStream, ServerCallContext context) =>
        StreamTilesAsync(request, responseStream, context);

    /// <inheritdoc />
    public override Task<GetDeepZoomInfoResponse> GetDeepZoomInfo(GetDeepZoomInfoRequest request, ServerCallContext context) =>
        Run(request.Path, context, slide => GetDeepZoomInfo(slide, request));

    /// <inheritdoc />
    public override Task<GetDeepZoomTileResponse> GetDeepZoomTile(GetDeepZoomTileRequest request, ServerCallContext context) =>
        Run(request.Path, context, slide => new GetDeepZoomTileResponse
        {
            Image = Encode(DeepZoomOf(slide, request.Parameters).GetTile(request.Level, request.Column, request.Row), request.Encoding, slide.BackgroundColor),
        });

    /// <inheritdoc />
    public override async Task<Google.Api.HttpBody> DownloadDeepZoomTile(GetDeepZoomTileRequest request, ServerCallContext context)
    {
        if (request.Encoding?.Format == ImageFormat.Raw)
        {
            throw Invalid("A tile as a file is JPEG or PNG: IMAGE_FORMAT_RAW has no media type (GetDeepZoomTile returns RAW).");
        }

        // The same tile as GetDeepZoomTile: a browser's tiles and a gRPC client's are one code path.
        GetDeepZoomTileResponse tile = await GetDeepZoomTile(request, context).ConfigureAwait(false);
        return new Google.Api.HttpBody { ContentType = tile.Image.Format == ImageFormat.Png ? "image/png" : "image/jpeg", Data = tile.Image.Data };
    }

    /// <inheritdoc />
    public override Task<ListSlidesResponse> ListSlides(ListSlidesRequest request, ServerCallContext context) =>
        Task.Run(() => SlideFiles.List(_roots), context.CancellationToken);

    /// <inheritdoc />
    public void Dispose()
    {
        _cache.Dispose();
        _streams.Dispose();
        _tissue.Dispose();
    }

    private static GetSlideInfoResponse GetSlideInfo(Slide slide, GetSlideInfoRequest request)
    {
        SlideInfo info = SlideInfo.Of(slide, request.HasMppOverride ? request.MppOverride : null);
        var response = new GetSlideInfoResponse
        {
            Path = info.Path,
            Vendor = info.Vendor ?? string.Empty,
            Width = info.Width,
            Height = info.Height,
            Resolution = ToProto(info.Resolution),
            BackgroundColor = info.BackgroundColor,
            Quickhash = info.QuickHash ?? string.Empty,
        };
        if (info.ObjectivePower is { } power)
        {
            response.ObjectivePower = power;
        }

        if (info.Bounds is { } bounds)
        {
            response.Bounds = new Rect { X = bounds.X, Y = bounds.Y, Width = bounds.Width, Height = bounds.Height };
        }

        response.Levels.AddRange(info.Levels.Select(l => new Protos.V1.SlideLevel { Width = l.Width, Height = l.Height, Downsample = l.Downsample }));
        response.Properties.Add(info.Properties.ToDictionary());
        response.AssociatedImages.AddRange(info.AssociatedImages.Select(a => new AssociatedImageInfo { Name = a.Key, Width = a.Value.Width, Height = a.Value.Height }));
        return response;
    }

    private static GetThumbnailResponse GetThumbnail(Slide slide, GetThumbnailRequest request)
    {
        int maxSize = request.MaxSize == 0 ? DefaultThumbnailSize : request.MaxSize;
        if (maxSize is < 1 or > MaxImageEdge)
        {
            throw Invalid($"max_size {request.MaxSize} is out of range: 1 to {MaxImageEdge} (0 means {DefaultThumbnailSize}).");
        }

        Raster thumbnail = slide.GetThumbnail(maxSize);
        return new GetThumbnailResponse
        {
            Image = Encode(thumbnail, request.Encoding, slide.BackgroundColor),
            Downsample = (double)slide.Dimensions.Width / thumbnail.Width,
        };
    }

    private static ReadRegionResponse ReadRegion(Slide slide, ReadRegionRequest request)
    {
        if (request.Width < 1 || request.Height < 1)
        {
            throw Invalid($"Region {request.Width}x{request.Height}: width and height must be at least 1.");
        }

        if ((long)request.Width * request.Height > MaxRegionPixels)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"Region {request.Width}x{request.Height} is more than {MaxRegionPixels} pixels, past the 4 MiB message limit: read it as tiles with StreamTiles, or in smaller regions."));
        }

        return new ReadRegionResponse
        {
            Image = Encode(slide.ReadRegion(request.X, request.Y, request.Level, request.Width, request.Height), request.Encoding, slide.BackgroundColor),
        };
    }

    private static DetectTissueResponse DetectTissue(Slide slide, DetectTissueRequest request)
    {
        double mpp = slide.RequireMpp(request.HasMppOverride ? request.MppOverride : null);
        TissueMask mask = TissueDetector.Detect(slide, mpp, TissueOptionsOf(request.Parameters));
        string geojson = QuPathGeoJson.TissueFeatureCollection(slide, mask.Polygons);
        var maskImage = new Raster(mask.Width, mask.Height, 1, mask.Mask.Select(m => m != 0 ? (byte)255 : (byte)0).ToArray());
        var response = new DetectTissueResponse
        {
            Mask = Encode(maskImage, new ImageEncoding { Format = ImageFormat.Png }, slide.BackgroundColor),
            DownsampleX = mask.DownsampleX,
            DownsampleY = mask.DownsampleY,
            TissueFraction = mask.TissueFraction,
            SaturationThreshold = mask.SaturationThreshold,
            PolygonCount = mask.Polygons.Count,
            Geojson = geojson,
        };
        return response.CalculateSize() <= MaxResponseBytes
            ? response
            : throw new RpcException(new Status(StatusCode.ResourceExhausted, $"The tissue outline of '{Path.GetFileName(slide.Path)}' is larger than 4 MiB; stream tiles with a tissue filter instead."));
    }

    private async Task StreamTilesAsync(StreamTilesRequest request, IServerStreamWriter<StreamTilesResponse> responses, ServerCallContext context)
    {
        using IDisposable streamSlot = await _streams.EnterAsync(context.CancellationToken).ConfigureAwait(false);
        using SlideLease lease = Open(request.Path);
        Slide slide = lease.Slide;
        try
        {
            TileGrid grid;
            EngineSlideResolution resolution;
            using (await _tissue.EnterAsync(context.CancellationToken, admitted: true).ConfigureAwait(false))
            {
                (grid, resolution) = await Task.Run(() => BuildGrid(slide, request, context.CancellationToken), context.CancellationToken).ConfigureAwait(false);
            }

            var info = new TileGridInfo
            {
                TargetMpp = grid.TargetMpp,
                TileSize = grid.TileSize,
                Level0TileSize = grid.Level0TileSize,
                Level0Stride = grid.Level0Stride,
                Columns = grid.Columns,
                Rows = grid.Rows,
                ReadLevel = grid.ReadLevel,
                TileCount = grid.Tiles.Count,
                SlideResolution = ToProto(resolution),
                ResolutionWarning = grid.ResolutionWarning ?? "",
            };
            await responses.WriteAsync(new StreamTilesResponse { Grid = info, TilesTotal = grid.Tiles.Count }, context.CancellationToken).ConfigureAwait(false);

            ImageEncoding encoding = request.Encoding ?? new ImageEncoding();
            (byte R, byte G, byte B) background = slide.BackgroundColor;
            long sent = 0;
            // Each write waits for HTTP/2 flow control, and the reader prepares only a few tiles ahead of it:
            // a slow client slows the reads instead of making the server hold the slide in memory.
            await foreach ((Tile tile, EncodedImage image) in TileReader.ReadAsync(grid, slide, (_, pixels) =>
            {
                Interlocked.Increment(ref _tilesRead);
                return Encode(pixels, encoding, background);
            }, _tileLookahead, cancellationToken: context.CancellationToken).ConfigureAwait(false))
            {
                await responses.WriteAsync(new StreamTilesResponse
                {
                    Tile = new SlideTile
                    {
                        Column = tile.Column,
                        Row = tile.Row,
                        Level0 = new Rect { X = tile.X, Y = tile.Y, Width = tile.Width, Height = tile.Height },
                        TissueFraction = tile.TissueFraction,
                        Image = image,
                    },
                    TilesSent = ++sent,
                    TilesTotal = grid.Tiles.Count,
                }, context.CancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (SlideStatus.From(e) is { } status)
        {
            throw Failed(slide, status);
        }
    }

    private static (TileGrid Grid, EngineSlideResolution Resolution) BuildGrid(Slide slide, StreamTilesRequest request, CancellationToken cancellationToken)
    {
        double mpp = slide.RequireMpp(request.HasMppOverride ? request.MppOverride : null, out EngineSlideResolution resolution);
        int tileSize = request.TileSize == 0 ? DefaultTileSize : request.TileSize;
        if (tileSize is < 1 or > MaxImageEdge)
        {
            throw Invalid($"tile_size {request.TileSize} is out of range: 1 to {MaxImageEdge} (0 means {DefaultTileSize}).");
        }

        double minTissue = request.HasMinTissueFraction ? request.MinTissueFraction : DefaultMinTissueFraction;
        if (minTissue is < 0 or > 1 || double.IsNaN(minTissue))
        {
            throw Invalid($"min_tissue_fraction {minTissue} is out of range: 0 to 1.");
        }

        var options = new TileGridOptions
        {
            TileSize = tileSize,
            Overlap = request.Overlap,
            TargetMpp = request.ResolutionCase == StreamTilesRequest.ResolutionOneofCase.TargetMpp ? request.TargetMpp : null,
            Magnification = request.ResolutionCase == StreamTilesRequest.ResolutionOneofCase.Magnification ? request.Magnification : null,
            MinTissueFraction = minTissue,
            RegionOfInterest = request.RegionOfInterest is { } roi ? new SlideBounds(roi.X, roi.Y, roi.Width, roi.Height) : null,
        };
        if (options.TargetMpp is null && options.Magnification is null)
        {
            throw Invalid("Give a resolution: target_mpp (µm per pixel) or magnification.");
        }

        (TileGrid grid, _) = TileGrid.OverTissue(slide, mpp, options, TissueOptionsOf(request.TissueParameters), detectTissue: false, cancellationToken);
        return (grid, resolution);
    }

    private static GetDeepZoomInfoResponse GetDeepZoomInfo(Slide slide, GetDeepZoomInfoRequest request)
    {
        DeepZoomGenerator dz = DeepZoomOf(slide, request.Parameters);
        var response = new GetDeepZoomInfoResponse
        {
            Dzi = dz.GetDzi(request.Format == ImageFormat.Png ? "png" : "jpeg"),
            TileCount = dz.TileCount,
        };
        response.Levels.AddRange(dz.LevelDimensions.Zip(dz.LevelTiles, (size, tiles) => new DeepZoomLevel
        {
            Width = size.Width,
            Height = size.Height,
            Columns = tiles.Columns,
            Rows = tiles.Rows,
        }));
        return response;
    }

    private static DeepZoomGenerator DeepZoomOf(Slide slide, DeepZoomParameters? parameters)
    {
        parameters ??= new DeepZoomParameters();
        return new DeepZoomGenerator(slide, parameters.TileSize == 0 ? 254 : parameters.TileSize, parameters.HasOverlap ? parameters.Overlap : 1, parameters.LimitBounds);
    }

    /// <summary>Runs a handler on a leased slide off the request thread, mapping engine failures to statuses.</summary>
    private Task<TResponse> Run<TResponse>(string path, ServerCallContext context, Func<Slide, TResponse> handler) =>
        Task.Run(() =>
        {
            using SlideLease lease = Open(path);
            try
            {
                return handler(lease.Slide);
            }
            catch (Exception e) when (SlideStatus.From(e) is { } status)
            {
                throw Failed(lease.Slide, status);
            }
        }, context.CancellationToken);

    /// <summary>The call's error; after corrupt data the slide leaves the cache (OpenSlide's error has latched on its handle), so the next call reopens the file.</summary>
    private RpcException Failed(Slide slide, Status status)
    {
        if (status.StatusCode == StatusCode.DataLoss)
        {
            _cache.Invalidate(slide);
        }

        return new RpcException(status);
    }

    private SlideLease Open(string path) => _roots.Open(path, (real, identity) => _cache.Open(real, identity.ToString()), lease =>
    {
        _cache.Invalidate(lease.Slide);
        lease.Dispose();
    });


    private static TissueDetectionOptions TissueOptionsOf(TissueDetectionParameters? parameters)
    {
        var options = new TissueDetectionOptions();
        if (parameters is null)
        {
            return options;
        }

        if (parameters.SaturationThreshold is < 0 or > 255)
        {
            throw Invalid($"saturation_threshold {parameters.SaturationThreshold} is out of range: 0 to 255.");
        }

        return options with
        {
            SaturationThreshold = parameters.UseOtsu ? null : parameters.SaturationThreshold > 0 ? parameters.SaturationThreshold : options.SaturationThreshold,
            MinTissueAreaSquareMicrons = parameters.MinTissueAreaUm2 > 0 ? parameters.MinTissueAreaUm2 : options.MinTissueAreaSquareMicrons,
            MaxFilledHoleAreaSquareMicrons = parameters.MaxHoleAreaUm2 > 0 ? parameters.MaxHoleAreaUm2 : options.MaxFilledHoleAreaSquareMicrons,
        };
    }

    /// <summary>
    /// Pixels as the request asks: JPEG (RGB, alpha flattened on the slide background), PNG or raw (bands kept).
    /// Refuses a result past <see cref="MaxResponseBytes"/>.
    /// </summary>
    private static EncodedImage Encode(Raster image, ImageEncoding? encoding, (byte R, byte G, byte B) background)
    {
        ImageFormat format = encoding?.Format ?? ImageFormat.Unspecified;
        int quality = encoding?.Quality ?? 0;
        if (quality is < 0 or > 100)
        {
            throw Invalid($"quality {quality} is out of range: 1 to 100 (0 means {DefaultQuality}).");
        }

        if (format == ImageFormat.Unspecified)
        {
            format = ImageFormat.Jpeg;
        }

        if (format == ImageFormat.Jpeg && Math.Max(image.Width, image.Height) > MaxJpegEdge)
        {
            throw Invalid($"A JPEG holds at most {MaxJpegEdge} pixels a side, not {image.Width}x{image.Height}: ask for PNG or RAW.");
        }

        Raster pixels = format == ImageFormat.Jpeg && image.Bands == 4 ? image.Flatten(background) : image;
        byte[] data = format switch
        {
            ImageFormat.Jpeg => ImageCodec.EncodeJpeg(pixels, quality == 0 ? DefaultQuality : quality),
            ImageFormat.Png => ImageCodec.EncodePng(pixels),
            ImageFormat.Raw => pixels.Pixels,
            _ => throw Invalid($"Unknown image format {(int)format}: use IMAGE_FORMAT_JPEG, IMAGE_FORMAT_PNG or IMAGE_FORMAT_RAW."),
        };
        if (data.Length > MaxResponseBytes)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"The {pixels.Width}x{pixels.Height} image is {data.Length} bytes as {format}, past the 4 MiB message limit: ask for JPEG, a smaller size, or tiles."));
        }

        // The encoded bytes are never touched again: wrap them instead of copying.
        return new EncodedImage { Width = pixels.Width, Height = pixels.Height, Channels = pixels.Bands, Format = format, Data = UnsafeByteOperations.UnsafeWrap(data) };
    }

    private static ProtoSlideResolution ToProto(EngineSlideResolution resolution)
    {
        var proto = new ProtoSlideResolution
        {
            Source = resolution.Source switch
            {
                Engine.Slides.MppSource.Override => Protos.V1.MppSource.Override,
                Engine.Slides.MppSource.OpenSlide => Protos.V1.MppSource.Openslide,
                Engine.Slides.MppSource.TiffResolution => Protos.V1.MppSource.TiffResolution,
                Engine.Slides.MppSource.ObjectivePower => Protos.V1.MppSource.ObjectivePower,
                _ => Protos.V1.MppSource.Unspecified,
            },
            Explanation = resolution.Explanation,
        };
        if (resolution.MppX is { } x)
        {
            proto.MppX = x;
        }

        if (resolution.MppY is { } y)
        {
            proto.MppY = y;
        }

        return proto;
    }

    private static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));
}
