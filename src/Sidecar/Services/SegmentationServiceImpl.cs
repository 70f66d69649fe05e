using Grpc.Core;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using SlidePlugin.Engine.Annotations;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Grpc;

using Contract = SlidePlugin.Protos.V1;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// <c>slideplugin.v1.SegmentationService</c>: FCN-MIL segmentation of slide regions and uploaded images by
/// <see cref="SegmentationModel"/>, outputs streamed in chunks below the clients' 4 MiB receive limit. One
/// segmentation runs at a time (each uses every core); up to <see cref="QueueCapacity"/> wait, more are refused.
/// </summary>
public sealed class SegmentationServiceImpl : Contract.SegmentationService.SegmentationServiceBase, IDisposable
{
    /// <summary>Segmentations running or waiting at once.</summary>
    public const int QueueCapacity = 4;

    private readonly SlideRoots _roots;
    private readonly ModelRoots _modelRoots;
    private readonly ConcurrentDictionary<string, SegmentationModel> _models = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _compute = new(1, 1);
    private int _queued;

    /// <summary>Creates the service: slides under <paramref name="roots"/>, models under <paramref name="models"/> (default: the slide roots).</summary>
    public SegmentationServiceImpl(SlideRoots roots, ModelRoots? models = null)
    {
        ArgumentNullException.ThrowIfNull(roots);
        _roots = roots;
        // Without model roots of their own (tests, embedders), models are looked for where the slides are.
        _modelRoots = models ?? new ModelRoots(roots.Roots);
    }

    /// <summary>Binds the service's methods.</summary>
    public void BindTo(GrpcServiceRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.Add(this);
    }

    /// <inheritdoc />
    public override Task Segment(SegmentRequest request, IServerStreamWriter<SegmentResponse> responseStream, ServerCallContext context) => SegmentAsync(request, responseStream, context);

    /// <inheritdoc />
    public void Dispose() => _compute.Dispose();

    private async Task SegmentAsync(SegmentRequest request, IServerStreamWriter<SegmentResponse> responses, ServerCallContext context)
    {
        if (request.SourceCase == SegmentRequest.SourceOneofCase.None)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "Name a source: slide_region (a slide and a level-0 rectangle) or image (encoded bytes)."));
        }

        if (request.HasTargetMpp && !(request.TargetMpp > 0))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "target_mpp must be positive."));
        }

        SegmentationModel model = ModelFor(request.ModelPath);
        Raster? uploaded = request.SourceCase == SegmentRequest.SourceOneofCase.Image ? EncodedImages.Decode(request.Image, "The image") : null;
        if (uploaded is not null && (long)uploaded.Width * uploaded.Height > SlideRegionReader.MaxOutputPixels)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"The image is {uploaded.Width}x{uploaded.Height}; at most {SlideRegionReader.MaxOutputPixels} pixels are segmented in one call: send it in parts."));
        }
        string? slidePath = request.SourceCase == SegmentRequest.SourceOneofCase.SlideRegion ? _roots.Resolve(request.SlideRegion.Path) : null;
        if (Interlocked.Increment(ref _queued) > QueueCapacity)
        {
            Interlocked.Decrement(ref _queued);
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"{QueueCapacity} segmentations are running or waiting; try again later."));
        }

        var clock = Stopwatch.StartNew();
        SegmentationResult result;
        (double X, double Y) bounds = (0, 0);
        try
        {
            await _compute.WaitAsync(context.CancellationToken).ConfigureAwait(false);
            try
            {
                (result, bounds) = await Task.Run(() => Segment(model, uploaded, slidePath, request, context.CancellationToken), context.CancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _compute.Release();
            }
        }
        catch (Exception e) when (e is not RpcException && e is not OperationCanceledException && SlideStatus.From(e) is { } status)
        {
            throw new RpcException(status);
        }
        finally
        {
            Interlocked.Decrement(ref _queued);
        }

        SegmentationCard card = model.Card;
        SegmentationMap map = result.Map;
        SegmentationPlacement placement = result.Placement;
        var header = new SegmentHeader
        {
            ModelName = card.Name,
            Width = map.Width,
            Height = map.Height,
            MapWidth = map.MapWidth,
            MapHeight = map.MapHeight,
            Stride = SegmentationMap.Stride,
            Level0X = placement.X,
            Level0Y = placement.Y,
            DownsampleX = placement.DownsampleX,
            DownsampleY = placement.DownsampleY,
        };
        if (placement.Mpp is { } mpp)
        {
            header.Mpp = mpp;
        }

        header.Classes.AddRange(card.Classes.Select((c, i) => new SegmentClass { Index = i, Code = c.Code, Name = c.Name, Color = c.Color }));
        await responses.WriteAsync(new SegmentResponse { Header = header }, context.CancellationToken).ConfigureAwait(false);
        for (int c = 0; c < map.Classes; c++)
        {
            await WriteChunksAsync(responses, SegmentOutput.ClassHeatmapPng, c, SegmentationExports.ClassHeatmapPng(map, c), context.CancellationToken).ConfigureAwait(false);
        }

        await WriteChunksAsync(responses, SegmentOutput.LabelPng, 0, SegmentationExports.LabelPng(map, card), context.CancellationToken).ConfigureAwait(false);
        IReadOnlyList<QuPathFeature> detections = SegmentationExports.Detections(map, card, placement);
        byte[] geojson = System.Text.Encoding.UTF8.GetBytes(QuPathGeoJson.ToFeatureCollection(detections, bounds.X, bounds.Y));
        await WriteChunksAsync(responses, SegmentOutput.Geojson, 0, geojson, context.CancellationToken).ConfigureAwait(false);

        long[] counts = map.LabelCounts();
        var summary = new SegmentSummary { DetectionCount = detections.Count, ElapsedSeconds = clock.Elapsed.TotalSeconds };
        summary.Classes.AddRange(Enumerable.Range(0, map.Classes).Select(c => new ClassPresence
        {
            Index = c,
            Presence = map.Presence[c],
            Present = map.IsPresent(c),
            Fraction = (double)counts[c] / map.Labels.Length,
        }));
        await responses.WriteAsync(new SegmentResponse { Summary = summary }, context.CancellationToken).ConfigureAwait(false);
    }

    /// <summary>Segments the uploaded image or the slide region; the slide's bounds offset comes back for the GeoJSON.</summary>
    private (SegmentationResult Result, (double X, double Y) Bounds) Segment(SegmentationModel model, Raster? uploaded, string? slidePath, SegmentRequest request, CancellationToken cancellationToken)
    {
        if (uploaded is not null)
        {
            return (model.SegmentImage(uploaded, cancellationToken), (0, 0));
        }

        using Slide slide = _roots.OpenSlide(slidePath!);
        double slideMpp = slide.RequireMpp(request.HasMppOverride ? request.MppOverride : null);
        (long x, long y, long width, long height) = RequestRegions.OrWholeSlide(request.SlideRegion.Region, slide);
        SlideBounds? bounds = SlideInfo.BoundsOf(slide.Properties);
        SegmentationResult result = model.SegmentRegion(slide, slideMpp, x, y, width, height, request.HasTargetMpp ? request.TargetMpp : null, cancellationToken);
        return (result, (bounds?.X ?? 0, bounds?.Y ?? 0));
    }

    private static async Task WriteChunksAsync(IServerStreamWriter<SegmentResponse> responses, SegmentOutput output, int classIndex, byte[] bytes, CancellationToken cancellationToken)
    {
        foreach ((int offset, int length) in ResponseChunks.Of(bytes.Length))
        {
            var chunk = new SegmentChunk { Output = output, ClassIndex = classIndex, TotalBytes = bytes.Length, Offset = offset, Data = ByteString.CopyFrom(bytes, offset, length) };
            await responses.WriteAsync(new SegmentResponse { Chunk = chunk }, cancellationToken).ConfigureAwait(false);
        }
    }

    private SegmentationModel ModelFor(string modelPath)
    {
        if (string.IsNullOrEmpty(modelPath))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "model_path is required: a segmentation checkpoint from 'slideplugin segment train' under a model root (--model-root)."));
        }

        string path = _modelRoots.Resolve(modelPath);
        try
        {
            return _models.GetOrAdd(path, SegmentationModel.Load);
        }
        catch (FileNotFoundException e)
        {
            throw new RpcException(new Status(StatusCode.NotFound, string.Create(CultureInfo.InvariantCulture, $"Cannot load segmentation model '{modelPath}': {e.Message}")));
        }
        catch (Exception e) when (e is IOException or ModelCheckpointException)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"Cannot load segmentation model '{modelPath}': {e.Message}"));
        }
    }
}
