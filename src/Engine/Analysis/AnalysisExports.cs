using System.Globalization;
using System.Text;
using System.Text.Json;
using SlidePlugin.Engine.Annotations;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Tissue;

namespace SlidePlugin.Engine.Analysis;

/// <summary>
/// What an analysis becomes for people and tools: QuPath GeoJSON tiles with measurement maps, a WSInfer-style CSV,
/// an attention heatmap over the thumbnail (with a colour bar), Ilse et al.'s attention-weighted view, a JSON summary.
/// </summary>
public static class AnalysisExports
{
    /// <summary>Class colours for tile classifications (QuPath needs one per class): benign-ish green, then red, blue, ...</summary>
    private static readonly (byte R, byte G, byte B)[] ClassColors = [(60, 170, 60), (200, 40, 40), (40, 90, 200), (230, 160, 20), (150, 60, 180), (20, 170, 170)];

    private static readonly JsonSerializerOptions SummaryJsonOptions = new() { WriteIndented = true };

    /// <summary>The measurement names, in order: attention, attention_percentile, prob_&lt;class&gt;...</summary>
    public static IReadOnlyList<string> MeasurementNames(AnalysisResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return ["attention", "attention_percentile", .. result.Header.Classes.Select(c => "prob_" + c)];
    }

    /// <summary>
    /// Every tile as a QuPath <c>tile</c> object: its square, classified by the class the model gives the tile alone,
    /// with the measurements of <see cref="MeasurementNames"/>. Coordinates minus (<paramref name="offsetX"/>,
    /// <paramref name="offsetY"/>): the slide's bounds offset, since QuPath shows OpenSlide images cropped to their bounds.
    /// </summary>
    public static string ToGeoJson(AnalysisResult result, double offsetX = 0, double offsetY = 0)
    {
        ArgumentNullException.ThrowIfNull(result);
        IReadOnlyList<string> classes = result.Header.Classes;
        IReadOnlyList<string> names = MeasurementNames(result);
        return QuPathGeoJson.ToFeatureCollection(result.Tiles.Select(tile =>
        {
            int best = Array.IndexOf(tile.Probabilities, tile.Probabilities.Max());
            var measurements = new Dictionary<string, double>(names.Count, StringComparer.Ordinal)
            {
                [names[0]] = tile.Attention,
                [names[1]] = tile.Percentile,
            };
            for (int k = 0; k < classes.Count; k++)
            {
                measurements[names[2 + k]] = tile.Probabilities[k];
            }

            PointD[] square = [new(tile.X, tile.Y), new(tile.X + tile.Width, tile.Y), new(tile.X + tile.Width, tile.Y + tile.Height), new(tile.X, tile.Y + tile.Height)];
            return new QuPathFeature(square, [], QuPathObjectType.Tile, classes[best], ClassColors[best % ClassColors.Length], measurements);
        }), offsetX, offsetY);
    }

    /// <summary>WSInfer's tile table plus attention: <c>minx,miny,width,height,attention,attention_percentile,prob_&lt;class&gt;...</c>, level-0 pixels.</summary>
    public static string ToCsv(AnalysisResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var csv = new StringBuilder("minx,miny,width,height,").AppendJoin(',', MeasurementNames(result)).Append('\n');
        foreach (AnalyzedTile tile in result.Tiles)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{tile.X},{tile.Y},{tile.Width},{tile.Height},{tile.Attention:R},{tile.Percentile:R}");
            foreach (float p in tile.Probabilities)
            {
                csv.Append(CultureInfo.InvariantCulture, $",{p:R}");
            }

            csv.Append('\n');
        }

        return csv.ToString();
    }

    /// <summary>
    /// The attention map (percentiles through the jet colour map, as CLAM) blended at 50 % over
    /// <paramref name="thumbnail"/> (the slide scaled down by <paramref name="downsample"/>), with a colour bar in the
    /// lower right corner; the same size as the thumbnail.
    /// </summary>
    public static Raster RenderHeatmap(Raster thumbnail, double downsample, AnalysisResult result)
    {
        ArgumentNullException.ThrowIfNull(thumbnail);
        ArgumentNullException.ThrowIfNull(result);
        Raster rgb = thumbnail.Bands == 3 ? thumbnail : thumbnail.Flatten((255, 255, 255));
        byte[] pixels = (byte[])rgb.Pixels.Clone();
        foreach (AnalyzedTile tile in result.Tiles)
        {
            (byte r, byte g, byte b) = Jet(tile.Percentile / 100);
            ForEachPixel(rgb, downsample, tile, offset =>
            {
                pixels[offset] = (byte)((pixels[offset] + r) / 2);
                pixels[offset + 1] = (byte)((pixels[offset + 1] + g) / 2);
                pixels[offset + 2] = (byte)((pixels[offset + 2] + b) / 2);
            });
        }

        var canvas = new DrawingCanvas(new Raster(rgb.Width, rgb.Height, 3, pixels));
        DrawColorBar(canvas);
        return canvas.ToRaster();
    }

    /// <summary>
    /// Ilse et al.'s view: every tile's pixels multiplied by its attention relative to the largest, stitched back in place
    /// on black; where the model looked stays bright.
    /// </summary>
    public static Raster RenderAttentionView(Raster thumbnail, double downsample, AnalysisResult result)
    {
        ArgumentNullException.ThrowIfNull(thumbnail);
        ArgumentNullException.ThrowIfNull(result);
        Raster rgb = thumbnail.Bands == 3 ? thumbnail : thumbnail.Flatten((255, 255, 255));
        var pixels = new byte[rgb.Pixels.Length];
        double max = result.Tiles.Count == 0 ? 1 : result.Tiles.Max(t => t.Attention);
        foreach (AnalyzedTile tile in result.Tiles)
        {
            double weight = tile.Attention / max;
            ForEachPixel(rgb, downsample, tile, offset =>
            {
                for (int c = 0; c < 3; c++)
                {
                    pixels[offset + c] = (byte)Math.Max(pixels[offset + c], Math.Round(rgb.Pixels[offset + c] * weight));
                }
            });
        }

        return new Raster(rgb.Width, rgb.Height, 3, pixels);
    }

    /// <summary>The analysis in one JSON object: slide, model, prediction, grid, counts and timing (no per-tile data).</summary>
    public static string ToSummaryJson(AnalysisResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        AnalysisHeader h = result.Header;
        var summary = new Dictionary<string, object?>
        {
            ["key"] = h.Key,
            ["slide"] = new Dictionary<string, object> { ["path"] = h.SlidePath, ["width"] = h.SlideWidth, ["height"] = h.SlideHeight, ["mpp"] = h.SlideMpp },
            ["model"] = new Dictionary<string, object> { ["name"] = h.ModelName, ["weights_sha256"] = h.ModelSha256, ["classes"] = h.Classes },
            ["prediction"] = new Dictionary<string, object>
            {
                ["class"] = result.PredictedClassName,
                ["probabilities"] = h.Classes.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => (double)result.Probabilities[x.i]),
            },
            ["tiles"] = new Dictionary<string, object>
            {
                ["count"] = h.TileCount,
                ["columns"] = h.Columns,
                ["rows"] = h.Rows,
                ["size"] = h.TileSize,
                ["target_mpp"] = h.TargetMpp,
                ["level0_size"] = h.Level0TileSize,
            },
            ["seconds"] = result.Seconds,
            ["tiles_per_second"] = result.Seconds > 0 ? h.TileCount / result.Seconds : null,
            ["finished"] = result.Finished,
            ["from_store"] = result.FromStore,
        };
        if (result.Timings is { } t)
        {
            summary["timings"] = new Dictionary<string, double>
            {
                ["tissue_seconds"] = t.TissueSeconds,
                ["read_thread_seconds"] = t.ReadThreadSeconds,
                ["model_seconds"] = t.ModelSeconds,
                ["store_seconds"] = t.StoreSeconds,
                ["finish_seconds"] = t.FinishSeconds,
            };
        }

        return JsonSerializer.Serialize(summary, SummaryJsonOptions);
    }

    /// <summary>Matplotlib's jet colour map at <paramref name="value"/> in [0, 1].</summary>
    public static (byte R, byte G, byte B) Jet(double value)
    {
        double v = Math.Clamp(value, 0, 1);
        static byte Channel(double x) => (byte)Math.Round(255 * Math.Clamp(1.5 - Math.Abs(x), 0, 1));
        return (Channel((4 * v) - 3), Channel((4 * v) - 2), Channel((4 * v) - 1));
    }

    /// <summary>Calls <paramref name="pixel"/> with the byte offset of every thumbnail pixel the tile covers.</summary>
    private static void ForEachPixel(Raster image, double downsample, AnalyzedTile tile, Action<int> pixel)
    {
        int x0 = Math.Clamp((int)Math.Floor(tile.X / downsample), 0, image.Width), x1 = Math.Clamp((int)Math.Ceiling((tile.X + tile.Width) / downsample), 0, image.Width);
        int y0 = Math.Clamp((int)Math.Floor(tile.Y / downsample), 0, image.Height), y1 = Math.Clamp((int)Math.Ceiling((tile.Y + tile.Height) / downsample), 0, image.Height);
        for (int y = y0; y < y1; y++)
        {
            for (int x = x0; x < x1; x++)
            {
                pixel(((y * image.Width) + x) * 3);
            }
        }
    }

    /// <summary>A vertical jet bar from 0 (bottom) to 100 (top) percentile with labels, on a white panel in the lower right.</summary>
    private static void DrawColorBar(DrawingCanvas canvas)
    {
        int barHeight = Math.Clamp(canvas.Height / 3, 24, 200), barWidth = Math.Clamp(canvas.Width / 40, 6, 16);
        int panelWidth = barWidth + 70, panelHeight = barHeight + 36;
        if (canvas.Width < panelWidth + 8 || canvas.Height < panelHeight + 8)
        {
            return; // too small a thumbnail to carry a legend
        }

        int left = canvas.Width - panelWidth - 4, top = canvas.Height - panelHeight - 4;
        canvas.FillRectangle(left, top, panelWidth, panelHeight, (255, 255, 255));
        int barLeft = left + 6, barTop = top + 18;
        for (int y = 0; y < barHeight; y++)
        {
            canvas.FillRectangle(barLeft, barTop + y, barWidth, 1, Jet(1 - ((double)y / (barHeight - 1))));
        }

        canvas.DrawText("attention %ile", left + 4, top + 2, (0, 0, 0), "sans 8");
        canvas.DrawText("100", barLeft + barWidth + 4, barTop - 4, (0, 0, 0), "sans 8");
        canvas.DrawText("0", barLeft + barWidth + 4, barTop + barHeight - 12, (0, 0, 0), "sans 8");
    }
}

/// <summary>The files of an analysis, one per format.</summary>
public enum AnalysisExportFormat
{
    /// <summary>QuPath GeoJSON of the tiles with their measurements, in QuPath's frame.</summary>
    GeoJson,

    /// <summary>One row per tile: rectangle, attention, percentile, class probabilities.</summary>
    Csv,

    /// <summary>Attention percentiles (jet) over the slide thumbnail, with a colour bar.</summary>
    HeatmapPng,

    /// <summary>Tiles multiplied by their relative attention, on black.</summary>
    AttentionPng,

    /// <summary>The prediction, model and grid as JSON.</summary>
    SummaryJson,
}

/// <summary>
/// The one place an analysis becomes files: what each format holds (<see cref="Render"/>), its file suffix, media type
/// and short name (as the HTTP route and the CLI spell it). The CLI, the gRPC export and the HTTP download all use it.
/// </summary>
public static class AnalysisFiles
{
    /// <summary>Edge of the thumbnail the heatmaps are drawn on.</summary>
    public const int ThumbnailSize = 1024;

    /// <summary>Every format, in the order files are written.</summary>
    public static IReadOnlyList<AnalysisExportFormat> Formats { get; } =
        [AnalysisExportFormat.GeoJson, AnalysisExportFormat.Csv, AnalysisExportFormat.HeatmapPng, AnalysisExportFormat.AttentionPng, AnalysisExportFormat.SummaryJson];

    /// <summary>What follows the slide's name in the file's name, e.g. <c>.tiles.csv</c>.</summary>
    public static string SuffixOf(AnalysisExportFormat format) => format switch
    {
        AnalysisExportFormat.GeoJson => ".geojson",
        AnalysisExportFormat.Csv => ".tiles.csv",
        AnalysisExportFormat.HeatmapPng => ".heatmap.png",
        AnalysisExportFormat.AttentionPng => ".attention.png",
        AnalysisExportFormat.SummaryJson => ".summary.json",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };

    /// <summary>The media type of the format's bytes.</summary>
    public static string MediaTypeOf(AnalysisExportFormat format) => format switch
    {
        AnalysisExportFormat.GeoJson => "application/geo+json",
        AnalysisExportFormat.Csv => "text/csv",
        AnalysisExportFormat.HeatmapPng or AnalysisExportFormat.AttentionPng => "image/png",
        AnalysisExportFormat.SummaryJson => "application/json",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };

    /// <summary>The format's short name: geojson, csv, heatmap, attention or summary.</summary>
    public static string NameOf(AnalysisExportFormat format) => format switch
    {
        AnalysisExportFormat.GeoJson => "geojson",
        AnalysisExportFormat.Csv => "csv",
        AnalysisExportFormat.HeatmapPng => "heatmap",
        AnalysisExportFormat.AttentionPng => "attention",
        AnalysisExportFormat.SummaryJson => "summary",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };

    /// <summary>The format of a short name (any case), or null.</summary>
    public static AnalysisExportFormat? Parse(string name) =>
        Formats.Select(f => (AnalysisExportFormat?)f).FirstOrDefault(f => string.Equals(NameOf(f!.Value), name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The bytes of <paramref name="format"/>. GeoJSON and the PNGs read the slide (its bounds, its thumbnail).</summary>
    public static byte[] Render(AnalysisResult result, Slides.Slide slide, AnalysisExportFormat format)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(slide);
        return Render(result, slide, format, new Lazy<Raster>(() => slide.GetThumbnail(ThumbnailSize)));
    }

    private static byte[] Render(AnalysisResult result, Slides.Slide slide, AnalysisExportFormat format, Lazy<Raster> thumbnail)
    {
        switch (format)
        {
            case AnalysisExportFormat.Csv:
                return System.Text.Encoding.UTF8.GetBytes(AnalysisExports.ToCsv(result));
            case AnalysisExportFormat.SummaryJson:
                return System.Text.Encoding.UTF8.GetBytes(AnalysisExports.ToSummaryJson(result));
            case AnalysisExportFormat.GeoJson:
                Slides.SlideBounds? bounds = Slides.SlideInfo.BoundsOf(slide.Properties);
                return System.Text.Encoding.UTF8.GetBytes(AnalysisExports.ToGeoJson(result, bounds?.X ?? 0, bounds?.Y ?? 0));
            case AnalysisExportFormat.HeatmapPng or AnalysisExportFormat.AttentionPng:
                double downsample = (double)slide.Dimensions.Width / thumbnail.Value.Width;
                return ImageCodec.EncodePng(format == AnalysisExportFormat.HeatmapPng
                    ? AnalysisExports.RenderHeatmap(thumbnail.Value, downsample, result)
                    : AnalysisExports.RenderAttentionView(thumbnail.Value, downsample, result));
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, null);
        }
    }

    /// <summary>
    /// Writes every format into <paramref name="folder"/> as <c>&lt;slide name&gt;&lt;suffix&gt;</c>, each atomically.
    /// Returns the paths written.
    /// </summary>
    public static IReadOnlyList<string> Write(AnalysisResult result, Slides.Slide slide, string folder)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(slide);
        Directory.CreateDirectory(folder);
        string name = Path.Combine(folder, Path.GetFileNameWithoutExtension(slide.Path));
        var written = new List<string>();
        var thumbnail = new Lazy<Raster>(() => slide.GetThumbnail(ThumbnailSize)); // both heatmaps draw on one thumbnail
        foreach (AnalysisExportFormat format in Formats)
        {
            IO.AtomicFile.WriteAllBytes(name + SuffixOf(format), Render(result, slide, format, thumbnail));
            written.Add(name + SuffixOf(format));
        }

        return written;
    }
}
