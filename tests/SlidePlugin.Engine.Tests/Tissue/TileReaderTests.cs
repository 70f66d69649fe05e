using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Tissue;

public class TileReaderTests
{
    private static (Slide Slide, TileGrid Grid) CmuGrid()
    {
        Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        return (slide, TileGrid.Build(slide, 0.499, new TileGridOptions { TargetMpp = 0.5, TileSize = 128, MinTissueFraction = 0 }));
    }

    [Theory]
    [InlineData(0.5)]  // level 0, no resampling
    [InlineData(2.0)]  // a coarser pyramid level
    [InlineData(0.7)]  // between levels: every tile resized
    public async Task ReadInBlocksAsync_SmallTiles_EveryTileOnceWithTheSamePixelsAsGridRead(double targetMpp)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        TileGrid grid = TileGrid.Build(slide, 0.499, new TileGridOptions { TargetMpp = targetMpp, TileSize = 32, MinTissueFraction = 0.5 }, TissueDetector.Detect(slide, 0.499));
        var seen = new Dictionary<Tile, byte[]>(ReferenceEqualityComparer.Instance);

        await foreach ((Tile tile, byte[] pixels) in TileReader.ReadInBlocksAsync(grid, slide, (_, raster) => raster.Pixels, blockTiles: 8, lookaheadBlocks: 3))
        {
            seen.Add(tile, pixels);
        }

        Assert.Equal(grid.Tiles.Count, seen.Count);
        // Each tile is cut from the block at its own read position and resized alone, as a single read is.
        int same = grid.Tiles.Count(t => grid.Read(slide, t).Pixels.AsSpan().SequenceEqual(seen[t]));
        Assert.True(same == grid.Tiles.Count, $"{same} of {grid.Tiles.Count} tiles identical");
    }

    [Fact]
    public async Task ReadAsync_AllTiles_InGridOrderWithTheirOwnPixels()
    {
        (Slide slide, TileGrid grid) = CmuGrid();
        using (slide)
        {
            var seen = new List<(Tile, byte[])>();
            await foreach ((Tile tile, byte[] pixels) in TileReader.ReadAsync(grid, slide, (_, raster) => raster.Pixels, lookahead: 4))
            {
                seen.Add((tile, pixels));
            }

            Assert.Equal(grid.Tiles, seen.Select(s => s.Item1));
            foreach (int i in new[] { 0, 7, seen.Count - 1 })
            {
                Assert.Equal(grid.Read(slide, grid.Tiles[i]).Pixels, seen[i].Item2);
            }
        }
    }

    [Fact]
    public async Task ReadAsync_SlowConsumer_NeverMoreThanLookaheadTilesAhead()
    {
        (Slide slide, TileGrid grid) = CmuGrid();
        using (slide)
        {
            int processed = 0, consumed = 0, maxAhead = 0;
            await foreach ((Tile _, int _) in TileReader.ReadAsync(grid, slide, (_, _) => Interlocked.Increment(ref processed), lookahead: 3))
            {
                consumed++;
                await Task.Delay(5);
                maxAhead = Math.Max(maxAhead, Volatile.Read(ref processed) - consumed);
            }

            Assert.Equal(grid.Tiles.Count, consumed);
            Assert.InRange(maxAhead, 1, 3);
        }
    }

    [Fact]
    public async Task ReadAsync_ConsumerStopsEarly_TilesInFlightFinishBeforeReturn()
    {
        (Slide slide, TileGrid grid) = CmuGrid();
        int running = 0;
        await foreach ((Tile _, int _) in TileReader.ReadAsync(grid, slide, (_, _) =>
        {
            Interlocked.Increment(ref running);
            Thread.Sleep(20);
            return Interlocked.Decrement(ref running);
        }, lookahead: 4))
        {
            break;
        }

        // Leaving the loop waited for the tiles in flight, so the slide can be closed safely now.
        Assert.Equal(0, Volatile.Read(ref running));
        slide.Dispose();
    }
}
