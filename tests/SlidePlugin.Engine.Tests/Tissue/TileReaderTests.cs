using SlidePlugin.Engine.Datasets;
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

    [Theory]
    [InlineData(0.5, 32, 32)]   // read size = tile size = patch size: each tile is copied from the region into its batch
    [InlineData(0.7, 32, 32)]   // resized from its read size
    [InlineData(0.5, 32, 24)]   // the model's patch is smaller than the grid's tile: resized again, as PatchOf does
    public async Task ReadBatchesAsync_BatchesCutByNumber_EachTileHasPatchOfGridRead(double targetMpp, int tileSize, int patchSize)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        TileGrid grid = TileGrid.Build(slide, 0.499, new TileGridOptions { TargetMpp = targetMpp, TileSize = tileSize, MinTissueFraction = 0.5 }, TissueDetector.Detect(slide, 0.499));
        Tile[] order = TileReader.InBlockOrder(grid.Tiles, 8);
        // A resumed analysis's remainder: every third tile is left out, so batches are ragged.
        Tile[] remaining = [.. order.Where((_, i) => i % 3 != 1)];
        var position = order.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i);
        var batches = new List<TileBatch>();

        await foreach (TileBatch batch in TileReader.ReadBatchesAsync(grid with { Tiles = remaining }, slide, patchSize, t => position[t] / 50, blockTiles: 8, lookaheadBlocks: 3))
        {
            batches.Add(batch);
        }

        Assert.Equal(remaining, batches.SelectMany(b => b.Tiles));
        Assert.Equal(remaining.GroupBy(t => position[t] / 50).Select(g => g.Key), batches.Select(b => b.Number));
        int bytes = patchSize * patchSize * 3, same = 0;
        foreach (TileBatch batch in batches)
        {
            Assert.Equal(batch.Tiles.Length * bytes, batch.Pixels.Length);
            same += batch.Tiles.Where((t, i) => PatchBag.PatchOf(grid.Read(slide, t), patchSize).Pixels.AsSpan().SequenceEqual(batch.Pixels.AsSpan(i * bytes, bytes))).Count();
        }

        Assert.True(same == remaining.Length, $"{same} of {remaining.Length} tiles identical");
    }

    [Fact]
    public async Task ReadBatchesAsync_DecreasingBatchNumbers_ArgumentException()
    {
        (Slide slide, TileGrid grid) = CmuGrid();
        using (slide)
        {
            var error = await Assert.ThrowsAsync<ArgumentException>(async () =>
            {
                await foreach (TileBatch _ in TileReader.ReadBatchesAsync(grid, slide, 128, t => -t.Row, blockTiles: 8, lookaheadBlocks: 2))
                {
                }
            });
            Assert.Contains("must not decrease", error.Message);
        }
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
