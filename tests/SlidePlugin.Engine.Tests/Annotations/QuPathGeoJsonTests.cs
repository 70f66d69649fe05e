using System.Text.Json;
using SlidePlugin.Engine.Annotations;
using SlidePlugin.Engine.Tissue;

namespace SlidePlugin.Engine.Tests.Annotations;

public class QuPathGeoJsonTests
{
    private static QuPathFeature Tile(int x, double attention) => new(
        [new PointD(x, 0), new PointD(x + 32, 0), new PointD(x + 32, 32), new PointD(x, 32), new PointD(x, 0)], [],
        QuPathObjectType.Tile, "tumour", (200, 40, 40), new Dictionary<string, double> { ["attention"] = attention });

    private static string[] IdsOf(string geoJson) =>
        [.. JsonDocument.Parse(geoJson).RootElement.GetProperty("features").EnumerateArray().Select(f => f.GetProperty("id").GetString()!)];

    [Fact]
    public void ToFeatureCollection_SameFeaturesTwice_SameBytesAndDistinctVersion5Ids()
    {
        // Two features with the same content, and two that differ only in a measurement.
        QuPathFeature[] features = [Tile(0, 0.5), Tile(0, 0.5), Tile(32, 0.25), Tile(32, 0.26)];

        string first = QuPathGeoJson.ToFeatureCollection(features, 10, 20), second = QuPathGeoJson.ToFeatureCollection(features, 10, 20);

        Assert.Equal(first, second);
        string[] ids = IdsOf(first);
        Assert.Equal(4, ids.Distinct().Count());
        Assert.All(ids, id => Assert.Equal('5', Guid.Parse(id).ToString()[14]));
        // The id follows the feature, not the call: the same feature at the same place in another file keeps it.
        Assert.Equal(ids[0], IdsOf(QuPathGeoJson.ToFeatureCollection([Tile(0, 0.5)], 10, 20))[0]);
        Assert.NotEqual(ids[0], IdsOf(QuPathGeoJson.ToFeatureCollection([Tile(0, 0.5)], 0, 0))[0]);
    }
}
