using System.Text;
using System.Text.Json;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;

namespace SlidePlugin.Engine.Annotations;

/// <summary>QuPath object types (<c>properties.objectType</c>).</summary>
public enum QuPathObjectType
{
    /// <summary>An annotation (QuPath's default when the type is missing).</summary>
    Annotation,

    /// <summary>A detection.</summary>
    Detection,

    /// <summary>A tile.</summary>
    Tile,
}

/// <summary>One polygon feature: exterior ring, holes, class, colour and measurements.</summary>
/// <param name="Exterior">The outline in level-0 pixels (closed implicitly).</param>
/// <param name="Holes">Inner rings.</param>
/// <param name="ObjectType">What QuPath makes of it.</param>
/// <param name="ClassName">The classification name, or null for none.</param>
/// <param name="Color">The class colour (QuPath needs one when a classification object is given).</param>
/// <param name="Measurements">Name to value; NaN and infinities are written as QuPath reads them.</param>
public sealed record QuPathFeature(
    IReadOnlyList<PointD> Exterior,
    IReadOnlyList<IReadOnlyList<PointD>> Holes,
    QuPathObjectType ObjectType,
    string? ClassName,
    (byte R, byte G, byte B) Color,
    IReadOnlyDictionary<string, double>? Measurements = null);

/// <summary>
/// GeoJSON that QuPath imports (File > Import objects, or drag and drop): a FeatureCollection whose
/// features carry <c>objectType</c>, <c>classification</c> {name, color} and <c>measurements</c> inside
/// <c>properties</c>. Coordinates are shifted by the slide's bounds offset, because QuPath shows an
/// OpenSlide image cropped to <c>openslide.bounds-*</c>.
/// </summary>
public static class QuPathGeoJson
{
    /// <summary>Colour of the "Tissue" class: a green that stands out on H&amp;E.</summary>
    public static readonly (byte R, byte G, byte B) TissueColor = (80, 180, 80);

    /// <summary>Tissue polygons as "Tissue" annotations with their area in µm².</summary>
    public static IEnumerable<QuPathFeature> TissueFeatures(IEnumerable<TissuePolygon> polygons)
    {
        ArgumentNullException.ThrowIfNull(polygons);
        return polygons.Select(p => new QuPathFeature(p.Exterior, p.Holes, QuPathObjectType.Annotation, "Tissue", TissueColor,
            new Dictionary<string, double> { ["Area µm^2"] = p.AreaSquareMicrons }));
    }

    /// <summary>Tissue of <paramref name="slide"/> as QuPath shows that slide: shifted by its bounds offset when it has bounds.</summary>
    public static string TissueFeatureCollection(Slide slide, IEnumerable<TissuePolygon> polygons)
    {
        ArgumentNullException.ThrowIfNull(slide);
        SlideBounds? bounds = SlideInfo.BoundsOf(slide.Properties);
        return ToFeatureCollection(TissueFeatures(polygons), bounds?.X ?? 0, bounds?.Y ?? 0);
    }

    /// <summary>The features as a GeoJSON FeatureCollection, each coordinate minus (<paramref name="offsetX"/>, <paramref name="offsetY"/>).</summary>
    public static string ToFeatureCollection(IEnumerable<QuPathFeature> features, double offsetX = 0, double offsetY = 0)
    {
        ArgumentNullException.ThrowIfNull(features);
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteString("type", "FeatureCollection");
            json.WriteStartArray("features");
            int index = 0;
            foreach (QuPathFeature feature in features)
            {
                WriteFeature(json, feature, index++, offsetX, offsetY);
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.GetBuffer(), 0, (int)stream.Length);
    }

    /// <summary>Namespace of the features' name-based UUIDs (RFC 9562 version 5).</summary>
    private static readonly Guid IdNamespace = new("5f0c8a51-7d3e-4b8e-9a62-2d1f6c0b9e47");

    /// <summary>
    /// QuPath's object id: a name-based UUID (version 5) of the feature's place in the file and everything it holds, so
    /// the same objects exported twice (a rerun, a resumed analysis) are the same bytes, and two objects never share one.
    /// </summary>
    private static Guid IdOf(QuPathFeature feature, int index, double offsetX, double offsetY)
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA1);
        byte[] number = new byte[8];
        hash.AppendData(IdNamespace.ToByteArray(bigEndian: true));
        void Append(double value)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(number, value);
            hash.AppendData(number);
        }

        void AppendText(string? text) => hash.AppendData(Encoding.UTF8.GetBytes((text ?? "\0") + "\u001f"));
        Append(index);
        AppendText(feature.ObjectType.ToString());
        AppendText(feature.ClassName);
        foreach (IReadOnlyList<PointD> ring in feature.Holes.Prepend(feature.Exterior))
        {
            Append(ring.Count);
            foreach (PointD point in ring)
            {
                Append(point.X - offsetX);
                Append(point.Y - offsetY);
            }
        }

        foreach ((string key, double value) in feature.Measurements ?? new Dictionary<string, double>())
        {
            AppendText(key);
            Append(value);
        }

        Span<byte> digest = stackalloc byte[20];
        hash.GetHashAndReset(digest);
        digest[6] = (byte)((digest[6] & 0x0F) | 0x50);   // version 5
        digest[8] = (byte)((digest[8] & 0x3F) | 0x80);   // RFC variant
        return new Guid(digest[..16], bigEndian: true);
    }

    private static void WriteFeature(Utf8JsonWriter json, QuPathFeature feature, int index, double offsetX, double offsetY)
    {
        json.WriteStartObject();
        json.WriteString("type", "Feature");
        json.WriteString("id", IdOf(feature, index, offsetX, offsetY).ToString());
        json.WriteStartObject("geometry");
        json.WriteString("type", "Polygon");
        json.WriteStartArray("coordinates");
        WriteRing(json, feature.Exterior, offsetX, offsetY);
        foreach (IReadOnlyList<PointD> hole in feature.Holes)
        {
            WriteRing(json, hole, offsetX, offsetY);
        }

        json.WriteEndArray();
        json.WriteEndObject();

        json.WriteStartObject("properties");
        json.WriteString("objectType", feature.ObjectType.ToString().ToLowerInvariant());
        if (feature.ClassName is { } name)
        {
            json.WriteStartObject("classification");
            json.WriteString("name", name);
            json.WriteStartArray("color");
            json.WriteNumberValue(feature.Color.R);
            json.WriteNumberValue(feature.Color.G);
            json.WriteNumberValue(feature.Color.B);
            json.WriteEndArray();
            json.WriteEndObject();
        }

        if (feature.Measurements is { Count: > 0 } measurements)
        {
            json.WriteStartObject("measurements");
            foreach ((string key, double value) in measurements)
            {
                if (double.IsFinite(value))
                {
                    json.WriteNumber(key, value);
                }
                else
                {
                    json.WriteString(key, double.IsNaN(value) ? "NaN" : value > 0 ? "Inf" : "-Inf");
                }
            }

            json.WriteEndObject();
        }

        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>A GeoJSON linear ring: closed (first point repeated last).</summary>
    private static void WriteRing(Utf8JsonWriter json, IReadOnlyList<PointD> ring, double offsetX, double offsetY)
    {
        json.WriteStartArray();
        for (int i = 0; i <= ring.Count; i++)
        {
            PointD point = ring[i % ring.Count];
            json.WriteStartArray();
            json.WriteNumberValue(point.X - offsetX);
            json.WriteNumberValue(point.Y - offsetY);
            json.WriteEndArray();
        }

        json.WriteEndArray();
    }
}
