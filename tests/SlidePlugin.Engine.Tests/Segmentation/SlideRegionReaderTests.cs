using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Segmentation;

public class SlideRegionReaderTests
{
    // A segmentation region over a tile's rectangle at the grid's resolution is the tile, byte for byte: regions and tiles
    // are read through one path (same level, same read size, same resampling), so a model sees the same pixels in both.
    [Theory]
    [InlineData("boxes.tiff", 1.0, 2.0, 64)]    // a pyramid level matches: no resampling
    [InlineData("boxes.tiff", 1.0, 3.0, 64)]    // between levels: the finer level, resampled
    [InlineData("boxes.tiff", 1.0, 2.7, 64)]    // 173 level-0 px = 86.5 level-1 px: one rounding for both
    [InlineData("CMU-1-Small-Region.svs", 0.499, 1.0, 256)]
    [InlineData("CMU-1-Small-Region.svs", 0.499, 0.5, 224)]
    public void Read_TileRectangle_SamePixelsAsTheTile(string file, double slideMpp, double targetMpp, int tileSize)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", file));
        TileGrid grid = TileGrid.Build(slide, slideMpp, new TileGridOptions { TargetMpp = targetMpp, TileSize = tileSize, MinTissueFraction = 0 });

        foreach (Tile tile in new[] { grid.Tiles[0], grid.Tiles[grid.Tiles.Count / 2], grid.Tiles[^1] })
        {
            (Raster region, _) = SlideRegionReader.Read(slide, slideMpp, tile.X, tile.Y, tile.Width, tile.Height, targetMpp);

            Raster expected = grid.Read(slide, tile);
            Assert.Equal((expected.Width, expected.Height), (region.Width, region.Height));
            Assert.True(expected.Pixels.AsSpan().SequenceEqual(region.Pixels), $"tile ({tile.Column}, {tile.Row}) differs");
        }
    }
}
