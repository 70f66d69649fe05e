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
    /// <summary>Small tiles (model patches) are read eight by eight as one region: per-tile reads cost more than the model.</summary>
    public const int SmallTileBlock = 8;

    /// <summary>
    /// Yields each tile of <paramref name="grid"/> with <paramref name="process"/>'s result for its pixels,
    /// in grid order. <paramref name="lookahead"/> tiles are prepared in parallel ahead of the consumer;
    /// <paramref name="readTime"/>, when given, hears how long each tile's read and processing took (for profiles).
    /// <paramref name="tiles"/>, when given, are the grid's tiles to read instead of all (a resumed job's remainder).
    /// </summary>
    public static async IAsyncEnumerable<(Tile Tile, T Result)> ReadAsync<T>(
        TileGrid grid,
        Slide slide,
        Func<Tile, Raster, T> process,
        int lookahead,
        Action<TimeSpan>? readTime = null,
        IReadOnlyList<Tile>? tiles = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(grid);
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(process);
        ArgumentOutOfRangeException.ThrowIfLessThan(lookahead, 1);
        await foreach ((Tile Tile, T Result) item in AheadAsync(tiles ?? grid.Tiles, tile => (tile, Timed(() => process(tile, grid.Read(slide, tile)), readTime)), lookahead, cancellationToken).ConfigureAwait(false))
        {
            yield return item;
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
        // A grid already in block order (InBlockOrder, then filtered) keeps that order: its blocks appear in it one after another.
        await foreach ((Tile, T)[] block in AheadAsync(blocks, block => Timed(() => ReadBlock(grid, slide, block, process), readTime), lookaheadBlocks, cancellationToken).ConfigureAwait(false))
        {
            foreach ((Tile Tile, T Result) item in block)
            {
                yield return item;
            }
        }
    }

    /// <summary>
    /// The tiles in the order <see cref="ReadInBlocksAsync{T}"/> yields them for a grid of all of them. A subset taken from
    /// this order (a resumed analysis leaving out the tiles it has) is read in the same relative order.
    /// </summary>
    public static Tile[] InBlockOrder(IEnumerable<Tile> tiles, int blockTiles)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockTiles, 1);
        return [.. tiles.GroupBy(t => (t.Row / blockTiles, t.Column / blockTiles)).SelectMany(g => g)];
    }

    /// <summary>
    /// <paramref name="work"/> on each item, in order, with at most <paramref name="lookahead"/> items in flight ahead of
    /// the consumer. When the consumer stops early or an item fails, the items in flight are awaited (so the caller may
    /// close the slide) and their outcomes observed.
    /// </summary>
    private static async IAsyncEnumerable<TResult> AheadAsync<TItem, TResult>(IReadOnlyList<TItem> items, Func<TItem, TResult> work, int lookahead,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var pending = new Queue<Task<TResult>>();
        int next = 0;
        try
        {
            while (next < items.Count || pending.Count > 0)
            {
                while (pending.Count < lookahead && next < items.Count)
                {
                    TItem item = items[next++];
                    pending.Enqueue(Task.Run(() => work(item), cancellationToken));
                }

                yield return await pending.Dequeue().ConfigureAwait(false);
            }
        }
        finally
        {
            foreach (Task<TResult> task in pending)
            {
                try
                {
                    await task.ConfigureAwait(false);
                }
                catch (Exception) when (task.IsFaulted || task.IsCanceled)
                {
                    // Already abandoned; the first failure (if any) was reported to the consumer.
                }
            }
        }
    }

    private static TResult Timed<TResult>(Func<TResult> work, Action<TimeSpan>? elapsed)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        TResult result = work();
        elapsed?.Invoke(System.Diagnostics.Stopwatch.GetElapsedTime(start));
        return result;
    }

    /// <summary>One region around the block's tiles at the grid's read level, cut into the tiles (resized as <see cref="TileGrid.Read"/> does).</summary>
    private static (Tile, T)[] ReadBlock<T>(TileGrid grid, Slide slide, Tile[] block, Func<Tile, Raster, T> process)
    {
        double downsample = slide.LevelDownsamples[grid.ReadLevel];
        long left = block.Min(t => t.X), top = block.Min(t => t.Y);
        int[] offsetsX = [.. block.Select(t => (int)Math.Round((t.X - left) / downsample))];
        int[] offsetsY = [.. block.Select(t => (int)Math.Round((t.Y - top) / downsample))];
        int[] sizes = [.. block.Select(t => slide.LevelExtent(t.Width, grid.ReadLevel))];
        int width = block.Select((_, i) => offsetsX[i] + sizes[i]).Max(), height = block.Select((_, i) => offsetsY[i] + sizes[i]).Max();
        Raster region = slide.ReadRegionRgb(left, top, grid.ReadLevel, width, height);
        var results = new (Tile, T)[block.Length];
        for (int i = 0; i < block.Length; i++)
        {
            Raster tile = region.Crop(offsetsX[i], offsetsY[i], sizes[i], sizes[i]);
            results[i] = (block[i], process(block[i], Slide.Scaled(tile, grid.TileSize, grid.TileSize)));
        }

        return results;
    }
}
