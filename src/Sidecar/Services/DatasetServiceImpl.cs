using Grpc.Core;
using Google.Protobuf;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.LabelMasks;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Grpc;

using Contract = SlidePlugin.Protos.V1;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// <c>slideplugin.v1.DatasetService</c>: the label-mask tools of <c>slideplugin dataset</c> on masks the client sends
/// (patch cutting, class statistics, palette colouring and back, class merging); slides named as in SlideService. A bad table, mask
/// or image is INVALID_ARGUMENT with the reason.
/// </summary>
public sealed class DatasetServiceImpl(SlideRoots roots) : Contract.DatasetService.DatasetServiceBase
{
    /// <summary>Largest mask <see cref="CutPatchesAsync"/> takes (pixels): 8192 x 8192, 192 MiB as RGB.</summary>
    public const long MaxCutPixels = 8192L * 8192;

    private readonly SlideRoots _roots = roots ?? throw new ArgumentNullException(nameof(roots));

    /// <summary>Binds the service's methods.</summary>
    public void BindTo(GrpcServiceRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.Add(this);
    }

    /// <inheritdoc />
    public override Task CutPatches(CutPatchesRequest request, IServerStreamWriter<CutPatchesResponse> responseStream, ServerCallContext context) =>
        CutPatchesAsync(request, responseStream, context);

    /// <inheritdoc />
    public override Task<ComputeClassStatisticsResponse> ComputeClassStatistics(ComputeClassStatisticsRequest request, ServerCallContext context) =>
        Task.FromResult(Guarded(() => Statistics(request)));

    /// <inheritdoc />
    public override Task<ColorMaskResponse> ColorMask(ColorMaskRequest request, ServerCallContext context) => Task.FromResult(Guarded(() => Color(request)));

    /// <inheritdoc />
    public override Task<MaskToCodesResponse> MaskToCodes(MaskToCodesRequest request, ServerCallContext context) => Task.FromResult(Guarded(() => Codes(request)));

    /// <inheritdoc />
    public override Task<MergeClassesResponse> MergeClasses(MergeClassesRequest request, ServerCallContext context) => Task.FromResult(Guarded(() => Merge(request)));

    private async Task CutPatchesAsync(CutPatchesRequest request, IServerStreamWriter<CutPatchesResponse> responses, ServerCallContext context)
    {
        if (request.SourceCase == CutPatchesRequest.SourceOneofCase.None)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "Name a source: image (encoded bytes) or slide_region (a slide and the level-0 rectangle the mask covers)."));
        }

        if (request.Size < 0 || request.Stride < 0 || (request.HasMinValidFraction && request.MinValidFraction is < 0 or > 1))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "size and stride are at least 0 (0: the defaults) and min_valid_fraction is in [0, 1]."));
        }

        string id = string.IsNullOrEmpty(request.Id) ? "image" : request.Id;
        if (id.IndexOfAny([.. Path.GetInvalidFileNameChars()]) >= 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"id '{id}' cannot be part of a file name."));
        }

        var defaults = new PatchCutOptions();
        var options = new PatchCutOptions
        {
            Size = request.Size > 0 ? request.Size : defaults.Size,
            Stride = request.Stride > 0 ? request.Stride : defaults.Stride,
            MinValidFraction = request.HasMinValidFraction ? request.MinValidFraction : defaults.MinValidFraction,
        };
        (LabelTable table, LabelMask mask) = Guarded(() =>
        {
            LabelTable parsed = LabelTable.Parse(request.TableTsv, "table_tsv");
            return (parsed, LabelMask.Decode(request.Mask.Span, parsed, "mask", EncodedImages.MaxPixels));
        });
        if ((long)mask.Width * mask.Height > MaxCutPixels)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"The mask is {mask.Width}x{mask.Height}; at most {MaxCutPixels} pixels are cut in one call: send it in parts."));
        }

        Raster image = request.SourceCase == CutPatchesRequest.SourceOneofCase.Image
            ? EncodedImages.Decode(request.Image, "The image")
            : await Task.Run(() => ReadRegion(request.SlideRegion, mask), context.CancellationToken).ConfigureAwait(false);
        if (image.Bands == 4)
        {
            image = image.Flatten((255, 255, 255));
        }

        IReadOnlyList<MaskPatch> patches = Guarded(() => PatchCutter.Plan(id, image, mask, options));
        foreach (MaskPatch patch in patches)
        {
            (Raster imagePatch, Raster maskPatch) = PatchCutter.Crop(image, mask, patch);
            var response = new CutPatchesResponse
            {
                Name = patch.Name,
                X = patch.X,
                Y = patch.Y,
                Size = patch.Size,
                ValidFraction = patch.ValidFraction,
                ImagePng = ByteString.CopyFrom(ImageCodec.EncodePng(imagePatch)),
                MaskPng = ByteString.CopyFrom(ImageCodec.EncodePng(maskPatch)),
            };
            response.Classes.AddRange(table.Classes.Where(c => patch.Counts[c.Code] > 0)
                .Select(c => new ClassCount { Code = c.Code, Name = c.Name, Pixels = patch.Counts[c.Code], Fraction = (double)patch.Counts[c.Code] / (patch.Size * patch.Size) }));
            await responses.WriteAsync(response, context.CancellationToken).ConfigureAwait(false);   // one patch in flight: the client's pace
        }
    }

    private Raster ReadRegion(SlideRegion source, LabelMask mask)
    {
        try
        {
            using Slide slide = _roots.OpenSlide(source.Path);
            (long x, long y, long width, long height) = RequestRegions.OrWholeSlide(source.Region, slide);
            return SlideRegionReader.ReadToSize(slide, x, y, width, height, mask.Width, mask.Height);
        }
        catch (Exception e) when (e is not RpcException && SlideStatus.From(e) is { } status)
        {
            throw new RpcException(status);
        }
    }

    private static ComputeClassStatisticsResponse Statistics(ComputeClassStatisticsRequest request)
    {
        LabelTable table = LabelTable.Parse(request.TableTsv, "table_tsv");
        LabelMask mask = LabelMask.Decode(request.Mask.Span, table, "mask", EncodedImages.MaxPixels);
        ClassCounts counts = ClassStatistics.Of("mask", mask, table);
        var response = new ComputeClassStatisticsResponse { PixelCount = counts.Pixels };
        response.Classes.AddRange(table.Classes.Select(c => new ClassCount { Code = c.Code, Name = c.Name, Pixels = counts.Counts[c.Code], Fraction = counts.FractionOf(c.Code) }));
        return response;
    }

    private static ColorMaskResponse Color(ColorMaskRequest request)
    {
        LabelTable table = LabelTable.Parse(request.TableTsv, "table_tsv");
        LabelMask mask = LabelMask.Decode(request.Mask.Span, table, "mask", EncodedImages.MaxPixels);
        return new ColorMaskResponse { Png = ByteString.CopyFrom(LabelPalette.EncodeIndexedPng(mask, table)) };
    }

    private static MaskToCodesResponse Codes(MaskToCodesRequest request)
    {
        if (!(request.Tolerance >= 0))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"tolerance {request.Tolerance} is not a distance: give 0 or more (RGB, 0-441)."));
        }

        LabelTable table = LabelTable.Parse(request.TableTsv, "table_tsv");
        PaletteDecoding decoded = LabelPalette.DecodeNearest(request.ColoredMask.Span, table, "colored_mask", request.Tolerance, EncodedImages.MaxPixels);
        return new MaskToCodesResponse
        {
            Png = ByteString.CopyFrom(ImageCodec.EncodePng(decoded.Mask.ToRaster())),
            SnappedPixels = decoded.SnappedPixels,
            LargestDistance = decoded.LargestDistance,
        };
    }

    private static MergeClassesResponse Merge(MergeClassesRequest request)
    {
        LabelTable table = LabelTable.Parse(request.TableTsv, "table_tsv");
        LabelMask mask = LabelMask.Decode(request.Mask.Span, table, "mask", EncodedImages.MaxPixels);
        ClassMerge merge = request.RuleCase switch
        {
            MergeClassesRequest.RuleOneofCase.Map => ClassMerge.FromMap(request.Map, table),
            MergeClassesRequest.RuleOneofCase.MinFraction => ClassMerge.ByFraction(ClassStatistics.Of("mask", mask, table), table, request.MinFraction,
                string.IsNullOrEmpty(request.OtherClass) ? "other" : request.OtherClass),
            _ => throw new LabelMaskException("Give a rule: map (\"from=to,...\") or min_fraction."),
        };
        LabelMask merged = merge.Apply(mask);
        var response = new MergeClassesResponse { Png = ByteString.CopyFrom(ImageCodec.EncodePng(merged.ToRaster())) };
        response.Moves.AddRange(merge.Moves.OrderBy(m => m.Key).Select(m => new ClassMove { FromCode = m.Key, ToCode = m.Value }));
        return response;
    }

    /// <summary>Runs <paramref name="work"/>; a table, mask or image the engine rejects becomes INVALID_ARGUMENT with its message.</summary>
    private static T Guarded<T>(Func<T> work)
    {
        try
        {
            return work();
        }
        catch (Exception e) when (e is LabelMaskException or ImageCodecException)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
    }
}
