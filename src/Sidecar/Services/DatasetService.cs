using Google.Protobuf;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.LabelMasks;
using SlidePlugin.Grpc;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Grpc;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// <c>slideplugin.v1.DatasetService</c>: the label-mask tools of <c>slideplugin dataset</c> on masks the client sends
/// (class statistics, palette colouring and back). A bad table or mask is INVALID_ARGUMENT with the reason.
/// </summary>
public static class DatasetService
{
    /// <summary>Binds the service's methods.</summary>
    public static void BindTo(GrpcServiceRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.AddService(SegmentationServiceReflection.Descriptor.Services[1])
            .Unary<ComputeClassStatisticsRequest, ComputeClassStatisticsResponse>("ComputeClassStatistics", (r, _) => Guarded(() => Statistics(r)))
            .Unary<ColorMaskRequest, ColorMaskResponse>("ColorMask", (r, _) => Guarded(() => Color(r)))
            .Unary<MaskToCodesRequest, MaskToCodesResponse>("MaskToCodes", (r, _) => Guarded(() => Codes(r)));
    }

    private static ComputeClassStatisticsResponse Statistics(ComputeClassStatisticsRequest request)
    {
        LabelTable table = LabelTable.Parse(request.TableTsv, "table_tsv");
        LabelMask mask = LabelMask.Decode(request.Mask.Span, table, "mask");
        ClassCounts counts = ClassStatistics.Of("mask", mask, table);
        var response = new ComputeClassStatisticsResponse { PixelCount = counts.Pixels };
        response.Classes.AddRange(table.Classes.Select(c => new ClassCount { Code = c.Code, Name = c.Name, Pixels = counts.Counts[c.Code], Fraction = counts.FractionOf(c.Code) }));
        return response;
    }

    private static ColorMaskResponse Color(ColorMaskRequest request)
    {
        LabelTable table = LabelTable.Parse(request.TableTsv, "table_tsv");
        LabelMask mask = LabelMask.Decode(request.Mask.Span, table, "mask");
        return new ColorMaskResponse { Png = ByteString.CopyFrom(LabelPalette.EncodeIndexedPng(mask, table)) };
    }

    private static MaskToCodesResponse Codes(MaskToCodesRequest request)
    {
        LabelTable table = LabelTable.Parse(request.TableTsv, "table_tsv");
        LabelMask mask = LabelPalette.Decode(request.ColoredMask.Span, table, "colored_mask");
        return new MaskToCodesResponse { Png = ByteString.CopyFrom(ImageCodec.EncodePng(new Raster(mask.Width, mask.Height, 1, mask.Codes))) };
    }

    private static Task<T> Guarded<T>(Func<T> work)
    {
        try
        {
            return Task.FromResult(work());
        }
        catch (Exception e) when (e is LabelMaskException or ImageCodecException)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
    }
}
