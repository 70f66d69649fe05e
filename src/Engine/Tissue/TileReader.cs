using System.Runtime.CompilerServices;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;

namespace SlidePlugin.Engine.Tissue;

/// <summary>
/// Reads the tiles of a grid in order, several at once, with a bounded look-ahead: at most
/// <c>lookahead</c> tiles are read and processed before the consumer asks for them, so a slow
/// consumer holds the reader back instead of letting it buffer the slide.
/// </summary>
public static class TileReader
{
    /// <summary>
    /// Yields each tile of <paramref name="grid"/> with <paramref name="process"/>'s result for its pixels,
    /// in grid order. <paramref name="lookahead"/> tiles are prepared in parallel ahead of the consumer;
    /// <paramref name="readTime"/>, when given, hears how long each tile's read and processing took (for profiles).
    /// </summary>
    public static async IAsyncEnumerable<(Tile Tile, T Result)> ReadAsync<T>(
        TileGrid grid,
        Slide slide,
        Func<Tile, Raster, T> process,
        int lookahead,
        Action<TimeSpan>? readTime = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(grid);
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(process);
        ArgumentOutOfRangeException.ThrowIfLessThan(lookahead, 1);
        var pending = new Queue<(Tile Tile, Task<T> Work)>();
        int next = 0;
        try
        {
            while (next < grid.Tiles.Count || pending.Count > 0)
            {
                while (pending.Count < lookahead && next < grid.Tiles.Count)
                {
                    Tile tile = grid.Tiles[next++];
                    pending.Enqueue((tile, Task.Run(() =>
                    {
                        long start = System.Diagnostics.Stopwatch.GetTimestamp();
                        T result = process(tile, grid.Read(slide, tile));
                        readTime?.Invoke(System.Diagnostics.Stopwatch.GetElapsedTime(start));
                        return result;
                    }, cancellationToken)));
                }

                (Tile done, Task<T> work) = pending.Dequeue();
                yield return (done, await work.ConfigureAwait(false));
            }
        }
        finally
        {
            // The consumer stopped early or a tile failed: let the tiles in flight finish before the
            // caller may close the slide, and observe their outcomes.
            foreach ((_, Task<T> work) in pending)
            {
                try
                {
                    await work.ConfigureAwait(false);
                }
                catch (Exception) when (work.IsFaulted || work.IsCanceled)
                {
                    // Already abandoned; the first failure (if any) was reported to the consumer.
                }
            }
        }
    }

    /// <summary>
    /// Like <see cref="ReadAsync{T}"/> for small tiles: tiles are grouped into blocks of
    /// <paramref name="blockTiles"/> x <paramref name="blockTiles"/> grid cells, each block is read as one region and
    /// cut into its tiles (a 32 px tile read alone pays a whole region read and, on TIFF levels, a tile decode). Yields
    /// block by block, each block's tiles in grid order; a tile's pixels are those <see cref="TileGrid.Read"/> gives.
    /// </summary>
    public static async IAsyncEnumerable<(Tile Tile, T Result)> ReadInBlocksAsync<T>(
        TileGrid grid,
        Slide slide,
        Func<Tile, Raster, T> process,
        int blockTiles,
        int lookaheadBlocks,
        Action<TimeSpan>? readTime = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(grid);
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(process);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockTiles, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(lookaheadBlocks, 1);
        List<Tile[]> blocks = [.. grid.Tiles.GroupBy(t => (t.Row / blockTiles, t.Column / blockTiles)).Select(g => g.ToArray())];
        var pending = new Queue<Task<(Tile Tile, T Result)[]>>();
        int next = 0;
        try
        {
            while (next < blocks.Count || pending.Count > 0)
            {
                while (pending.Count < lookaheadBlocks && next < blocks.Count)
                {
                    Tile[] block = blocks[next++];
                    pending.Enqueue(Task.Run(() =>
                    {
                        long start = System.Diagnostics.Stopwatch.GetTimestamp();
                        (Tile, T)[] results = ReadBlock(grid, slide, block, process);
                        readTime?.Invoke(System.Diagnostics.Stopwatch.GetElapsedTime(start));
                        return results;
                    }, cancellationToken));
                }

                foreach ((Tile Tile, T Result) item in await pending.Dequeue().ConfigureAwait(false))
                {
                    yield return item;
                }
            }
        }
        finally
        {
            foreach (Task<(Tile Tile, T Result)[]> work in pending)
            {
                try
                {
                    await work.ConfigureAwait(false);
                }
                catch (Exception) when (work.IsFaulted || work.IsCanceled)
                {
                    // Abandoned, as in ReadAsync.
                }
            }
        }
    }

    /// <summary>One region around the block's tiles at the grid's read level, cut into the tiles (resized as <see cref="TileGrid.Read"/> does).</summary>
    private static (Tile, T)[] ReadBlock<T>(TileGrid grid, Slide slide, Tile[] block, Func<Tile, Raster, T> process)
    {
        double downsample = slide.LevelDownsamples[grid.ReadLevel];
        long left = block.Min(t => t.X), top = block.Min(t => t.Y);
        int[] offsetsX = [.. block.Select(t => (int)Math.Round((t.X - left) / downsample))];
        int[] offsetsY = [.. block.Select(t => (int)Math.Round((t.Y - top) / downsample))];
        int[] sizes = [.. block.Select(t => grid.ReadSizeOf(slide, t))];
        int width = block.Select((_, i) => offsetsX[i] + sizes[i]).Max(), height = block.Select((_, i) => offsetsY[i] + sizes[i]).Max();
        Raster region = slide.ReadRegionRgb(left, top, grid.ReadLevel, width, height);
        var results = new (Tile, T)[block.Length];
        for (int i = 0; i < block.Length; i++)
        {
            Raster tile = region.Crop(offsetsX[i], offsetsY[i], sizes[i], sizes[i]);
            results[i] = (block[i], process(block[i], sizes[i] == grid.TileSize ? tile : ImageCodec.Resize(tile, grid.TileSize, grid.TileSize)));
        }

        return results;
    }
}
