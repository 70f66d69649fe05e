using System.Text.Json;
using SlidePlugin.Engine.Annotations;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.LabelMasks;
using SlidePlugin.Engine.Tissue;

namespace SlidePlugin.Engine.Segmentation;

/// <summary>
/// Where a segmented image lies on its slide: its top-left corner in level-0 pixels, level-0 pixels per image pixel
/// along each axis (a region rounds to whole pixels, so the two differ slightly), and the level-0 resolution when known
/// (areas are then given in µm²). An uploaded image is at (0, 0), downsample 1.
/// </summary>
public sealed record SegmentationPlacement(double X, double Y, double DownsampleX, double DownsampleY, double? Mpp = null)
{
    /// <summary>An image on its own: image pixels are the frame.</summary>
    public static SegmentationPlacement Image { get; } = new(0, 0, 1, 1);
}

/// <summary>
/// What a segmentation becomes: one grey probability PNG per class and an indexed label PNG (palette = the classes'
/// colours, values = their label codes), both upsampled to the segmented image's size; QuPath detections per class
/// (the argmax regions of the map as polygons with holes); an overlay over the image; a JSON summary.
/// </summary>
public static class SegmentationExports
{
    private static readonly JsonSerializerOptions SummaryJsonOptions = new() { WriteIndented = true };

    /// <summary>Class <paramref name="c"/>'s probability map as an 8-bit grey PNG (255 = 1), upsampled (bilinear) to the image's size.</summary>
    public static byte[] ClassHeatmapPng(SegmentationMap map, int c)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentOutOfRangeException.ThrowIfNegative(c);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(c, map.Classes);
        ReadOnlySpan<float> probabilities = map.ClassMap(c);
        var grey = new byte[probabilities.Length];
        for (int i = 0; i < grey.Length; i++)
        {
            grey[i] = (byte)Math.Clamp(MathF.Round(probabilities[i] * 255f), 0f, 255f);
        }

        // Enlarged by exactly the stride (each map pixel back over its block), then cropped to the image's remainder.
        int stride = SegmentationMap.Stride;
        Raster full = ImageCodec.Resize(new Raster(map.MapWidth, map.MapHeight, 1, grey), map.MapWidth * stride, map.MapHeight * stride, ResizeKernel.Linear);
        return ImageCodec.EncodePng(full.Width == map.Width && full.Height == map.Height ? full : full.Crop(0, 0, map.Width, map.Height));
    }

    /// <summary>The argmax map as label codes at the image's size (each map pixel fills its stride x stride block).</summary>
    public static LabelMask LabelCodes(SegmentationMap map, SegmentationCard card)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(card);
        byte[] codeOf = [.. card.Classes.Select(c => c.Code)];
        return new LabelMask(map.Width, map.Height, [.. map.LabelsAtInputSize().Select(label => codeOf[label])]);
    }

    /// <summary>The argmax map as an indexed PNG: values are label codes, the palette the classes' colours.</summary>
    public static byte[] LabelPng(SegmentationMap map, SegmentationCard card) =>
        LabelPalette.EncodeIndexedPng(LabelCodes(map, card), card.ToLabelTable());

    /// <summary>
    /// Each foreground class's argmax regions of at least <paramref name="minMapPixels"/> map pixels as QuPath detections
    /// (exterior and holes, in level-0 pixels by <paramref name="placement"/>), classified with the class's name and
    /// colour, measured by area (µm² when the resolution is known, else level-0 pixels²) and the class's presence.
    /// </summary>
    public static IReadOnlyList<QuPathFeature> Detections(SegmentationMap map, SegmentationCard card, SegmentationPlacement placement, int minMapPixels = 1)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(card);
        ArgumentNullException.ThrowIfNull(placement);
        int stride = SegmentationMap.Stride;
        double pixelArea = stride * placement.DownsampleX * stride * placement.DownsampleY * Math.Pow(placement.Mpp ?? 1, 2);
        string areaName = placement.Mpp is null ? "Area px^2" : "Area µm^2";
        PointD ToLevel0((int X, int Y) p) => new(
            placement.X + (Math.Min(p.X * stride, map.Width) * placement.DownsampleX),
            placement.Y + (Math.Min(p.Y * stride, map.Height) * placement.DownsampleY));
        var features = new List<QuPathFeature>();
        for (int c = 1; c < map.Classes; c++)
        {
            if (Array.IndexOf(map.Labels, (byte)c) < 0)
            {
                continue;
            }

            SegmentationClass named = card.Classes[c];
            foreach (var piece in ContourTracer.Pieces(map.Labels, map.MapWidth, map.MapHeight, (byte)c).Where(p => p.Pixels >= minMapPixels))
            {
                features.Add(new QuPathFeature(
                    [.. piece.Exterior.Select(ToLevel0)],
                    [.. piece.Holes.Select(h => (IReadOnlyList<PointD>)[.. h.Select(ToLevel0)])],
                    QuPathObjectType.Detection, named.Name, named.Rgb(),
                    new Dictionary<string, double> { [areaName] = piece.Pixels * pixelArea, ["presence"] = map.Presence[c] }));
            }
        }

        return features;
    }

    /// <summary>The argmax colours blended at 50 % over <paramref name="image"/> (background left clear), the image's size.</summary>
    public static Raster RenderOverlay(Raster image, SegmentationMap map, SegmentationCard card)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(card);
        var colours = card.Classes.Select(c => c.Rgb()).ToArray();
        byte[] labels = map.LabelsAtInputSize();
        var pixels = new byte[image.Width * image.Height * 3];
        for (int i = 0; i < labels.Length; i++)
        {
            ReadOnlySpan<byte> source = image.Pixels.AsSpan(i * image.Bands, image.Bands);
            (byte r, byte g, byte b) = image.Bands <= 2 ? (source[0], source[0], source[0]) : (source[0], source[1], source[2]);
            (byte cr, byte cg, byte cb) = colours[labels[i]];
            bool blend = labels[i] != 0;
            pixels[i * 3] = blend ? (byte)((r + cr) / 2) : r;
            pixels[(i * 3) + 1] = blend ? (byte)((g + cg) / 2) : g;
            pixels[(i * 3) + 2] = blend ? (byte)((b + cb) / 2) : b;
        }

        return new Raster(image.Width, image.Height, 3, pixels);
    }

    /// <summary>Per class: its presence, the fraction of the map it wins and whether the argmax considered it (the map's threshold).</summary>
    public static string ToSummaryJson(SegmentationMap map, SegmentationCard card, string source, SegmentationPlacement placement)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(card);
        ArgumentNullException.ThrowIfNull(placement);
        long[] counts = map.LabelCounts();
        var summary = new
        {
            source,
            model = card.Name,
            width = map.Width,
            height = map.Height,
            map_width = map.MapWidth,
            map_height = map.MapHeight,
            stride = SegmentationMap.Stride,
            level0 = new { x = placement.X, y = placement.Y, downsample_x = placement.DownsampleX, downsample_y = placement.DownsampleY, mpp = placement.Mpp },
            image_level_threshold = map.ImageLevelThreshold,
            classes = card.Classes.Select((c, i) => new
            {
                code = c.Code,
                name = c.Name,
                presence = map.Presence[i],
                present = map.IsPresent(i),
                fraction = (double)counts[i] / map.Labels.Length,
            }),
        };
        return JsonSerializer.Serialize(summary, SummaryJsonOptions);
    }
}

/// <summary>The files of a segmentation: per-class probability PNGs, the label PNG, an overlay, QuPath detections, a summary.</summary>
public static class SegmentationFiles
{
    /// <summary>
    /// Writes <c>&lt;stem&gt;-labels.png</c>, <c>&lt;stem&gt;-overlay.png</c>, <c>&lt;stem&gt;-prob-&lt;class&gt;.png</c> per class,
    /// <c>&lt;stem&gt;-segmentation.geojson</c> (coordinates minus <paramref name="offsetX"/>, <paramref name="offsetY"/>: the slide's
    /// bounds offset, as QuPath shows it) and <c>&lt;stem&gt;-segmentation.json</c> into <paramref name="folder"/>, each
    /// atomically; returns the paths.
    /// </summary>
    public static IReadOnlyList<string> Write(SegmentationResult segmentation, SegmentationCard card, string source, string folder, string stem, double offsetX = 0, double offsetY = 0)
    {
        ArgumentNullException.ThrowIfNull(segmentation);
        ArgumentNullException.ThrowIfNull(card);
        Directory.CreateDirectory(folder);
        var written = new List<string>();
        void Bytes(string name, byte[] bytes)
        {
            string path = System.IO.Path.Combine(folder, $"{stem}-{name}");
            AtomicFile.WriteAllBytes(path, bytes);
            written.Add(path);
        }

        void Text(string name, string text) => Bytes(name, System.Text.Encoding.UTF8.GetBytes(text));   // as AtomicFile.WriteAllText

        SegmentationMap map = segmentation.Map;
        Bytes("labels.png", SegmentationExports.LabelPng(map, card));
        Bytes("overlay.png", ImageCodec.EncodePng(SegmentationExports.RenderOverlay(segmentation.Image, map, card)));
        for (int c = 0; c < map.Classes; c++)
        {
            Bytes($"prob-{FileSafe(card.Classes[c].Name)}.png", SegmentationExports.ClassHeatmapPng(map, c));
        }

        Text("segmentation.geojson", QuPathGeoJson.ToFeatureCollection(SegmentationExports.Detections(map, card, segmentation.Placement), offsetX, offsetY));
        Text("segmentation.json", SegmentationExports.ToSummaryJson(map, card, source, segmentation.Placement));
        return written;
    }

    private static string FileSafe(string name) =>
        new([.. name.Select(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' ? ch : '_')]);
}
