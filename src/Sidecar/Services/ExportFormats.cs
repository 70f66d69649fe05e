using Grpc.Core;
using SlidePlugin.Engine.Analysis;
using SlidePlugin.Protos.V1;

namespace SlidePlugin.Sidecar.Services;

/// <summary>The contract's export formats and the engine's, one to one (used by the service and by <c>analyze --server</c>).</summary>
internal static class ExportFormats
{
    private static readonly (ExportFormat Proto, AnalysisExportFormat Engine)[] Pairs =
    [
        (ExportFormat.Geojson, AnalysisExportFormat.GeoJson), (ExportFormat.Csv, AnalysisExportFormat.Csv),
        (ExportFormat.HeatmapPng, AnalysisExportFormat.HeatmapPng), (ExportFormat.AttentionPng, AnalysisExportFormat.AttentionPng),
        (ExportFormat.SummaryJson, AnalysisExportFormat.SummaryJson),
    ];

    /// <exception cref="RpcException">INVALID_ARGUMENT for UNSPECIFIED or an unknown value.</exception>
    public static AnalysisExportFormat FromProto(ExportFormat format) =>
        Pairs.FirstOrDefault(p => p.Proto == format) is { Proto: not ExportFormat.Unspecified } pair
            ? pair.Engine
            : throw new RpcException(new Status(StatusCode.InvalidArgument, $"format {format} is not an export format: GEOJSON, CSV, HEATMAP_PNG, ATTENTION_PNG or SUMMARY_JSON."));

    public static ExportFormat ToProto(AnalysisExportFormat format) => Pairs.Single(p => p.Engine == format).Proto;
}
