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
