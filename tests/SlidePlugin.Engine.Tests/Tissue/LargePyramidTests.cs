using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Tissue;

/// <summary>Resolution, tiling and tissue filtering on a generated 30,000 x 30,000 pyramid with known tissue.</summary>
public class LargePyramidTests
{
    private static Slide OpenLarge() => Slide.Open(SyntheticSlides.Large());

    [Fact]
    public void Open_GeneratedPyramid_ResolutionFromTiffTagsAndHalvingLevels()
    {
        using Slide slide = OpenLarge();

        SlideResolution resolution = SlideResolution.Resolve(slide.Properties);

        Assert.Equal(MppSource.TiffResolution, resolution.Source);
        Assert.Equal(SyntheticSlides.Mpp, resolution.MppX!.Value, 6);
        Assert.Equal(SyntheticSlides.Mpp, resolution.MppY!.Value, 6);
        Assert.True(slide.LevelCount >= 6, $"{slide.LevelCount} levels");
        Assert.Equal((30000L, 30000L), slide.Dimensions);
    }

    // Whole tiles only: floor(30000 / (256 * target / 0.25)) per axis.
    [Theory]
    [InlineData(0.5, 58, 1)]  // 512 level-0 px a tile, read from level 1
    [InlineData(1.0, 29, 2)]  // 1024 level-0 px a tile, read from level 2
    [InlineData(0.75, 39, 1)] // 768 px: no level at 3x, read from level 1 and resampled
    public void Build_TargetMpp_AnalyticGridAndReadLevel(double targetMpp, int perAxis, int readLevel)
    {
        using Slide slide = OpenLarge();

        TileGrid grid = TileGrid.Build(slide, SyntheticSlides.Mpp, new TileGridOptions { TargetMpp = targetMpp, MinTissueFraction = 0 });

        Assert.Equal((perAxis, perAxis), (grid.Columns, grid.Rows));
        Assert.Equal(perAxis * perAxis, grid.Tiles.Count);
        Assert.Equal(readLevel, grid.ReadLevel);
        Raster tile = grid.Read(slide, grid.Tiles[^1]);
        Assert.Equal((256, 256), (tile.Width, tile.Height));
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(1.0)]
    public void Build_TissueFilter_KeepsExactlyTheBlobTiles(double targetMpp)
    {
        using Slide slide = OpenLarge();
        TissueMask mask = TissueDetector.Detect(slide, SyntheticSlides.Mpp);

        TileGrid grid = TileGrid.Build(slide, SyntheticSlides.Mpp, new TileGridOptions { TargetMpp = targetMpp, MinTissueFraction = 0.5 }, mask);

        int tileL0 = (int)(256 * targetMpp / SyntheticSlides.Mpp);
        var expected = new HashSet<(int, int)>();
        foreach (Level0Rect blob in SyntheticSlides.LargeBlobs)
        {
            for (int row = blob.Y / tileL0; row < (blob.Y + blob.Height) / tileL0; row++)
            {
                for (int column = blob.X / tileL0; column < (blob.X + blob.Width) / tileL0; column++)
                {
                    expected.Add((column, row));
                }
            }
        }

        Assert.Equal(targetMpp == 0.5 ? 344 : 86, expected.Count);
        Assert.Equal(expected.Order(), grid.Tiles.Select(t => (t.Column, t.Row)).Order());
        Assert.All(grid.Tiles, t => Assert.InRange(t.TissueFraction, 0.9, 1.0));
        Assert.Equal(SyntheticSlides.LargeBlobs.Count, mask.Polygons.Count);
    }
}
