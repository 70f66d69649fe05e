using System.Text.Json;
using System.Xml.Linq;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Slides;

/// <summary>Deep Zoom geometry and tiles compared with openslide-python's DeepZoomGenerator on the same slide.</summary>
public class DeepZoomGeneratorTests
{
    private sealed record Reference(JsonElement Root, byte[][] Tiles);

    private static async Task<Reference> ReferenceAsync(string path, int tileSize, int overlap, bool limitBounds, params string[] tiles)
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-dz").FullName;
        try
        {
            string json = await ExternalProcess.RunReferenceScriptAsync("openslide_deepzoom.py",
                [path, $"{tileSize}", $"{overlap}", limitBounds ? "1" : "0", folder, .. tiles]);
            return new Reference(JsonDocument.Parse(json).RootElement.Clone(), tiles.Select((_, i) => File.ReadAllBytes(Path.Combine(folder, $"{i}.rgb"))).ToArray());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static void AssertGeometryEqual(JsonElement expected, DeepZoomGenerator dz)
    {
        Assert.Equal(expected.GetProperty("level_count").GetInt32(), dz.LevelCount);
        Assert.Equal(expected.GetProperty("level_dimensions").EnumerateArray().Select(d => (d[0].GetInt64(), d[1].GetInt64())), dz.LevelDimensions);
        Assert.Equal(expected.GetProperty("level_tiles").EnumerateArray().Select(d => (d[0].GetInt64(), d[1].GetInt64())), dz.LevelTiles);
        Assert.Equal(expected.GetProperty("tile_count").GetInt64(), dz.TileCount);

        XElement theirs = XElement.Parse(expected.GetProperty("dzi").GetString()!);
        XElement ours = XElement.Parse(dz.GetDzi("jpeg"));
        Assert.Equal(theirs.Name, ours.Name);
        Assert.Equal(theirs.Attributes().OrderBy(a => a.Name.ToString()).Select(a => a.ToString()), ours.Attributes().OrderBy(a => a.Name.ToString()).Select(a => a.ToString()));
        XElement theirSize = theirs.Elements().Single(), ourSize = ours.Elements().Single();
        Assert.Equal(theirSize.Name, ourSize.Name);
        Assert.Equal(theirSize.Attributes().Select(a => a.ToString()), ourSize.Attributes().Select(a => a.ToString()));

        int compared = 0;
        foreach (JsonElement t in expected.GetProperty("tiles").EnumerateArray())
        {
            var want = new DeepZoomTileSource(t[3].GetInt64(), t[4].GetInt64(), t[5].GetInt32(), t[6].GetInt32(), t[7].GetInt32(), t[8].GetInt32(), t[9].GetInt32());
            Assert.Equal(want, dz.GetTileSource(t[0].GetInt32(), t[1].GetInt64(), t[2].GetInt64()));
            compared++;
        }

        Assert.Equal(dz.TileCount, compared);
    }

    [Theory]
    [InlineData("CMU-1-Small-Region.svs", 254, 1, false)]
    [InlineData("CMU-1-Small-Region.svs", 254, 1, true)]
    [InlineData("CMU-1-Small-Region.svs", 510, 0, false)]
    [InlineData("boxes.tiff", 254, 1, false)]
    [InlineData("boxes.tiff", 64, 3, true)]
    [InlineData("small.svs", 254, 1, false)]
    public async Task Geometry_RealSlide_EqualsOpenSlidePythonForEveryTile(string file, int tileSize, int overlap, bool limitBounds)
    {
        string path = TestData.Path("slides", file);
        Reference reference = await ReferenceAsync(path, tileSize, overlap, limitBounds);
        using Slide slide = Slide.Open(path);

        AssertGeometryEqual(reference.Root, new DeepZoomGenerator(slide, tileSize, overlap, limitBounds));
    }

    [Fact]
    public async Task Geometry_GeneratedLargePyramid_EqualsOpenSlidePythonForEveryTile()
    {
        string path = SyntheticSlides.Large();
        Reference reference = await ReferenceAsync(path, 254, 1, limitBounds: true);
        using Slide slide = Slide.Open(path);
        var dz = new DeepZoomGenerator(slide, limitBounds: true);

        AssertGeometryEqual(reference.Root, dz);
        Assert.Equal(16, dz.LevelCount); // ceil(log2(30000)) + 1
        Assert.Equal((119L, 119L), dz.LevelTiles[^1]);
    }

    [Theory]
    // Tiles read at a slide level's own scale need no resampling: identical to openslide-python's.
    [InlineData("CMU-1-Small-Region.svs", 12, 0, 0)]
    [InlineData("CMU-1-Small-Region.svs", 12, 3, 5)]
    [InlineData("CMU-1-Small-Region.svs", 12, 8, 11)]   // bottom-right: no overlap past the edge
    [InlineData("boxes.tiff", 8, 0, 0)]                  // matches boxes.tiff level 1 exactly
    [InlineData("boxes.tiff", 9, 1, 0)]
    public async Task GetTile_UnscaledTile_PixelsIdenticalToOpenSlidePython(string file, int level, long column, long row)
    {
        string path = TestData.Path("slides", file);
        Reference reference = await ReferenceAsync(path, 254, 1, false, $"{level}:{column},{row}");
        using Slide slide = Slide.Open(path);
        var dz = new DeepZoomGenerator(slide);

        Raster tile = dz.GetTile(level, column, row);

        DeepZoomTileSource source = dz.GetTileSource(level, column, row);
        Assert.Equal((source.TileWidth, source.TileHeight, 3), (tile.Width, tile.Height, tile.Bands));
        Assert.Equal(reference.Tiles[0], tile.Pixels);
    }

    [Theory]
    // Scaled tiles: the same region and size; only the resampler differs (libvips vs PIL Lanczos).
    [InlineData("CMU-1-Small-Region.svs", 11, 2, 3)]
    // At or coarser than the slide's overview (CMU has one level): cut from it, still as close.
    [InlineData("CMU-1-Small-Region.svs", 10, 1, 1)]
    [InlineData("CMU-1-Small-Region.svs", 10, 2, 2)]    // bottom-right, clipped at the slide's edge
    [InlineData("CMU-1-Small-Region.svs", 9, 1, 0)]
    [InlineData("CMU-1-Small-Region.svs", 8, 0, 0)]     // the whole slide in one tile
    [InlineData("boxes.tiff", 7, 0, 0)]
    // Not boxes.tiff level 6: PIL's thumbnail keeps the read region's aspect ratio and returns 38x31 where
    // openslide-python's own get_tile_dimensions says 38x32; ours is always the announced size.
    public async Task GetTile_ScaledTile_CloseToOpenSlidePython(string file, int level, long column, long row)
    {
        string path = TestData.Path("slides", file);
        Reference reference = await ReferenceAsync(path, 254, 1, false, $"{level}:{column},{row}");
        using Slide slide = Slide.Open(path);

        Raster tile = new DeepZoomGenerator(slide).GetTile(level, column, row);

        Assert.Equal(reference.Tiles[0].Length, tile.Pixels.Length);
        double meanAbsoluteError = reference.Tiles[0].Zip(tile.Pixels, (a, b) => Math.Abs(a - b)).Average();
        Assert.InRange(meanAbsoluteError, 0, 3.0);
    }

    [Theory]
    // CMU has one level: tiles at or coarser than its overview (downsample 4) are cut from it. At the overview's own
    // scale the inside of a tile is the same bytes as the region read and reduced; coarser, it is reduced twice, and the
    // edge tile's clipped read is reduced by a factor a little off 4.
    [InlineData(10, 1, 1, 0, 0.05)]
    [InlineData(9, 1, 1, 8, 0.5)]
    [InlineData(10, 2, 2, 16, 0.5)]
    public void GetTile_CutFromTheOverview_CloseToTheRegionReadAndScaled(int level, long column, long row, int maxInside, double maxMean)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        var dz = new DeepZoomGenerator(slide);
        DeepZoomTileSource source = dz.GetTileSource(level, column, row);
        Raster direct = Slide.Scaled(slide.ReadRegionRgb(source.X, source.Y, source.SlideLevel, source.ReadWidth, source.ReadHeight), source.TileWidth, source.TileHeight);

        Raster tile = dz.GetTile(level, column, row);

        Assert.Equal(4, slide.GetOverview()!.Downsample);
        Assert.Equal((direct.Width, direct.Height), (tile.Width, tile.Height));
        // The resampler's reach past the tile's edge differs between the two: the border is left out of the maximum.
        const int border = 6;
        int largest = 0;
        for (int y = border; y < tile.Height - border; y++)
        {
            for (int x = border; x < tile.Width - border; x++)
            {
                for (int band = 0; band < 3; band++)
                {
                    largest = Math.Max(largest, Math.Abs(tile[x, y][band] - direct[x, y][band]));
                }
            }
        }

        Assert.InRange(largest, 0, maxInside);
        Assert.InRange(direct.Pixels.Zip(tile.Pixels, (a, b) => Math.Abs(a - b)).Average(), 0, maxMean);
    }

    [Theory]
    [InlineData(-1, 0, 0)]
    [InlineData(13, 0, 0)]
    [InlineData(12, 9, 0)]
    [InlineData(12, 0, -1)]
    public void GetTileSource_AddressOutOfRange_OutOfRangeNamingTheRange(int level, long column, long row)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        var dz = new DeepZoomGenerator(slide);

        SlideException error = Assert.Throws<SlideException>(() => dz.GetTileSource(level, column, row));

        Assert.Equal(SlideErrorKind.OutOfRange, error.Kind);
        Assert.Contains(level is < 0 or > 12 ? "levels are 0..12" : "9 x 12 tiles", error.Message, StringComparison.Ordinal);
    }
}
