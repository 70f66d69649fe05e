using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Tissue;

public class TileGridTests
{
    private const double CmuMpp = 0.499;

    private static Slide OpenCmu() => Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));

    // CMU-1-Small-Region: 2220 x 2967 at 0.499 µm/px. Whole tiles only: floor((extent - tile) / stride) + 1.
    [Theory]
    [InlineData(0.5, 256, 0, 8, 11)]   // tile 256.51 level-0 px
    [InlineData(1.0, 256, 0, 4, 5)]    // tile 513.03
    [InlineData(0.5, 256, 64, 11, 15)] // stride 192.38
    [InlineData(0.499, 224, 0, 9, 13)] // native resolution: tile 224 exactly
    public void Build_CmuAtTargetMpp_AnalyticGrid(double targetMpp, int tileSize, int overlap, int columns, int rows)
    {
        using Slide slide = OpenCmu();

        TileGrid grid = TileGrid.Build(slide, CmuMpp, new TileGridOptions { TargetMpp = targetMpp, TileSize = tileSize, Overlap = overlap, MinTissueFraction = 0 });

        Assert.Equal((columns, rows), (grid.Columns, grid.Rows));
        Assert.Equal(columns * rows, grid.Tiles.Count);
        double tileL0 = tileSize * targetMpp / CmuMpp;
        Assert.Equal(tileL0, grid.Level0TileSize, 9);
        Assert.All(grid.Tiles, t => Assert.True(t.X + t.Width <= 2220 + 1 && t.Y + t.Height <= 2967 + 1, $"tile {t} leaves the slide"));
        Tile last = grid.Tiles[^1];
        Assert.Equal((long)Math.Round((columns - 1) * (tileSize - overlap) * targetMpp / CmuMpp), last.X);
    }

    [Theory]
    [InlineData(1e-6, 256, SlideErrorKind.InvalidRequest, "finer than the slide's 0.499 µm/px; at most 16x")]
    [InlineData(0.001, 1, SlideErrorKind.InvalidRequest, "finer than the slide's 0.499 µm/px; at most 16x")]
    [InlineData(0.0624, 1, SlideErrorKind.TooLarge, "cells; the limit is 8388608")]   // 8x finer, 1 px tiles: 4.2e8 cells
    [InlineData(0.5, 5000, SlideErrorKind.InvalidRequest, "larger than the limit of 4096 px")]
    public void Build_AbsurdGrid_RefusedNamingTheLimitBeforeAnyTileIsMade(double targetMpp, int tileSize, SlideErrorKind kind, string message)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        var options = new TileGridOptions { TileSize = tileSize, TargetMpp = targetMpp, MinTissueFraction = 0 };

        SlideException checkedFirst = Assert.Throws<SlideException>(() => TileGrid.CheckLimits(slide, 0.499, options));
        SlideException built = Assert.Throws<SlideException>(() => TileGrid.Build(slide, 0.499, options));

        Assert.Equal((kind, kind), (checkedFirst.Kind, built.Kind));
        Assert.Contains(message, built.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Build_Magnification1e9_RefusedAsFinerThanTheSlide()
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));

        SlideException error = Assert.Throws<SlideException>(() => TileGrid.Build(slide, 0.499, new TileGridOptions { Magnification = 1e9, MinTissueFraction = 0 }));

        Assert.Equal(SlideErrorKind.InvalidRequest, error.Kind);
    }

    [Fact]
    public void Build_Cancelled_StopsWithOperationCanceled()
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        Assert.Throws<OperationCanceledException>(() => TileGrid.Build(slide, 0.499, new TileGridOptions { TileSize = 32, TargetMpp = 0.5, MinTissueFraction = 0 }, cancellationToken: cancelled.Token));
    }

    [Theory]
    [InlineData(0.25, "0.25 µm/px is finer than the slide's 0.499 µm/px: each 256 px tile is enlarged 2x from 128.3 px of the scan")]
    [InlineData(0.499, null)]
    [InlineData(1.0, null)]
    public void Build_TargetFinerThanTheSlide_WarnsThatTilesAreEnlarged(double targetMpp, string? warning)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));

        TileGrid grid = TileGrid.Build(slide, 0.499, new TileGridOptions { TileSize = 256, TargetMpp = targetMpp, MinTissueFraction = 0 });

        if (warning is null)
        {
            Assert.Null(grid.ResolutionWarning);
        }
        else
        {
            Assert.StartsWith(warning, grid.ResolutionWarning, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Build_WithTissueMask_KeepsExactlyTheTilesAtOrAboveTheFraction()
    {
        using Slide slide = OpenCmu();
        TissueMask mask = TissueDetector.Detect(slide, CmuMpp);
        TileGrid all = TileGrid.Build(slide, CmuMpp, new TileGridOptions { TargetMpp = 0.5, MinTissueFraction = 0 }, mask);

        TileGrid kept = TileGrid.Build(slide, CmuMpp, new TileGridOptions { TargetMpp = 0.5, MinTissueFraction = 0.5 }, mask);

        Assert.InRange(kept.Tiles.Count, 1, all.Tiles.Count - 1);
        Assert.Equal(all.Tiles.Where(t => t.TissueFraction >= 0.5).Select(t => (t.Column, t.Row)), kept.Tiles.Select(t => (t.Column, t.Row)));
        Assert.All(kept.Tiles, t => Assert.Equal(mask.TissueFractionOf(t.X, t.Y, t.Width, t.Height), t.TissueFraction, 12));
    }

    [Fact]
    public void Build_Magnification_ResolvedThroughObjectivePower()
    {
        using Slide slide = OpenCmu(); // scanned at 20x

        TileGrid grid = TileGrid.Build(slide, CmuMpp, new TileGridOptions { Magnification = 10, MinTissueFraction = 0 });

        Assert.Equal(CmuMpp * 2, grid.TargetMpp, 12);
    }

    [Fact]
    public void Build_RegionOfInterest_TilesInsideIt()
    {
        using Slide slide = OpenCmu();
        var roi = new SlideBounds(500, 700, 1000, 800);

        TileGrid grid = TileGrid.Build(slide, CmuMpp, new TileGridOptions { TargetMpp = CmuMpp, TileSize = 200, MinTissueFraction = 0, RegionOfInterest = roi });

        Assert.Equal((5, 4), (grid.Columns, grid.Rows));
        Assert.All(grid.Tiles, t => Assert.True(t.X >= 500 && t.Y >= 700 && t.X + t.Width <= 1500 && t.Y + t.Height <= 1500));
    }

    [Fact]
    public void Read_AtNativeResolution_SamePixelsAsReadRegion()
    {
        using Slide slide = OpenCmu();
        TileGrid grid = TileGrid.Build(slide, CmuMpp, new TileGridOptions { TargetMpp = CmuMpp, MinTissueFraction = 0 });
        Tile tile = grid.Tiles[13];

        Raster pixels = grid.Read(slide, tile);

        Assert.Equal(slide.ReadRegion(tile.X, tile.Y, 0, 256, 256).Flatten(slide.BackgroundColor).Pixels, pixels.Pixels);
    }

    [Theory]
    [InlineData(2.0, 1, 64)]  // a level matches: read at level 1, no resampling
    [InlineData(3.0, 1, 96)]  // between levels: read the finer one (level 1, 96 px) and resample to 64
    public void Read_PyramidSlide_BestLevelThenResample(double scale, int expectedLevel, int readSize)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "boxes.tiff"));
        const double assumedMpp = 1.0; // boxes.tiff has no resolution; any will do for geometry

        TileGrid grid = TileGrid.Build(slide, assumedMpp, new TileGridOptions { TargetMpp = scale * assumedMpp, TileSize = 64, MinTissueFraction = 0 });
        Raster tile = grid.Read(slide, grid.Tiles[0]);

        Assert.Equal(expectedLevel, grid.ReadLevel);
        Assert.Equal((64, 64, 3), (tile.Width, tile.Height, tile.Bands));
        Raster direct = slide.ReadRegion(0, 0, expectedLevel, readSize, readSize).Flatten(slide.BackgroundColor);
        Raster expected = readSize == 64 ? direct : ImageCodec.Resize(direct, 64, 64);
        Assert.Equal(expected.Pixels, tile.Pixels);
    }

    [Theory]
    [InlineData(256, 256)]
    [InlineData(256, -1)]
    [InlineData(0, 0)]
    public void Build_BadTileOrOverlap_ArgumentException(int tileSize, int overlap)
    {
        using Slide slide = OpenCmu();

        Assert.Throws<ArgumentException>(() => TileGrid.Build(slide, CmuMpp, new TileGridOptions { TargetMpp = 0.5, TileSize = tileSize, Overlap = overlap, MinTissueFraction = 0 }));
    }

    [Fact]
    public void Build_NoTargetOrNoMaskForTissueFilter_ArgumentExceptionSayingWhat()
    {
        using Slide slide = OpenCmu();

        var noTarget = Assert.Throws<ArgumentException>(() => TileGrid.Build(slide, CmuMpp, new TileGridOptions { MinTissueFraction = 0 }));
        var noMask = Assert.Throws<ArgumentException>(() => TileGrid.Build(slide, CmuMpp, new TileGridOptions { TargetMpp = 0.5 }));

        Assert.Contains("TargetMpp", noTarget.Message, StringComparison.Ordinal);
        Assert.Contains("tissue mask", noMask.Message, StringComparison.Ordinal);
    }
}
