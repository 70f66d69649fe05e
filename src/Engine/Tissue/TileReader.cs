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
        List<Tile[]> blocks = BlocksOf(grid.Tiles, blockTiles);
        await foreach ((Tile, T)[] block in AheadAsync(blocks, block => Timed(() => ReadBlock(grid, slide, block, process), readTime), lookaheadBlocks, cancellationToken).ConfigureAwait(false))
        {
            foreach ((Tile Tile, T Result) item in block)
            {
                yield return item;
            }
        }
    }

    /// <summary>
    /// Reads the tiles of <paramref name="grid"/> as <see cref="ReadInBlocksAsync{T}"/> does, into batches: the tiles
    /// <paramref name="batchOf"/> maps to one number (non-decreasing along the grid's tiles) make one <see cref="TileBatch"/>,
    /// yielded once its last tile is read. Each tile is cut from its block's region straight into the batch's buffer at
    /// <paramref name="patchSize"/> (resized there only when its read size or the grid's tile size differs), so a tile's
    /// pixels are copied once between the slide read and the model's input. A tile's bytes are those
    /// <c>PatchBag.PatchOf(grid.Read(slide, tile), patchSize)</c> gives.
    /// </summary>
    public static async IAsyncEnumerable<TileBatch> ReadBatchesAsync(
        TileGrid grid,
        Slide slide,
        int patchSize,
        Func<Tile, int> batchOf,
        int blockTiles,
        int lookaheadBlocks,
        Action<TimeSpan>? readTime = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(grid);
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(batchOf);
        ArgumentOutOfRangeException.ThrowIfLessThan(patchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockTiles, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(lookaheadBlocks, 1);
        BatchPlan plan = BatchPlan.Of(grid.Tiles, batchOf);
        int patchBytes = patchSize * patchSize * 3;
        var buffers = new System.Collections.Concurrent.ConcurrentDictionary<int, byte[]>();
        List<Tile[]> blocks = BlocksOf(grid.Tiles, blockTiles);
        var seen = new int[plan.Tiles.Length];
        await foreach (Tile[] block in AheadAsync(blocks, block => Timed(() =>
                           {
                               CutBlock(grid, slide, block, (i, region, x, y, size) =>
                               {
                                   (int batch, int slot) = plan.Place[block[i]];
                                   byte[] buffer = buffers.GetOrAdd(batch, static (b, p) => new byte[p.Plan.Tiles[b].Length * p.PatchBytes], (Plan: plan, PatchBytes: patchBytes));
                                   Span<byte> target = buffer.AsSpan(slot * patchBytes, patchBytes);
                                   if (size == grid.TileSize && size == patchSize)
                                   {
                                       region.CopyTo(x, y, size, size, target);
                                   }
                                   else
                                   {
                                       Raster tile = Slide.Scaled(region.Crop(x, y, size, size), grid.TileSize, grid.TileSize);
                                       Slide.Scaled(tile, patchSize, patchSize).Pixels.CopyTo(target);
                                   }
                               });
                               return block;
                           }, readTime), lookaheadBlocks, cancellationToken).ConfigureAwait(false))
        {
            foreach (Tile tile in block)
            {
                int batch = plan.Place[tile].Batch;
                if (++seen[batch] == plan.Tiles[batch].Length && buffers.TryRemove(batch, out byte[]? pixels))
                {
                    yield return new TileBatch(plan.Numbers[batch], plan.Tiles[batch], pixels);
                }
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
        return [.. BlocksOf(tiles, blockTiles).SelectMany(b => b)];
    }

    /// <summary>
    /// The tiles grouped by <paramref name="blockTiles"/> x <paramref name="blockTiles"/> grid cells, blocks in order of their
    /// first tile. A grid already in block order (InBlockOrder, then filtered) keeps that order.
    /// </summary>
    private static List<Tile[]> BlocksOf(IEnumerable<Tile> tiles, int blockTiles) =>
        [.. tiles.GroupBy(t => (t.Row / blockTiles, t.Column / blockTiles)).Select(g => g.ToArray())];

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
        var results = new (Tile, T)[block.Length];
        CutBlock(grid, slide, block, (i, region, x, y, size) =>
            results[i] = (block[i], process(block[i], Slide.Scaled(region.Crop(x, y, size, size), grid.TileSize, grid.TileSize))));
        return results;
    }

    /// <summary>
    /// Reads one region around <paramref name="block"/>'s tiles at the grid's read level and hands <paramref name="cut"/>
    /// each tile's place in it: (index in the block, region, x, y, edge in read-level pixels).
    /// </summary>
    private static void CutBlock(TileGrid grid, Slide slide, Tile[] block, Action<int, Raster, int, int, int> cut)
    {
        double downsample = slide.LevelDownsamples[grid.ReadLevel];
        long left = block.Min(t => t.X), top = block.Min(t => t.Y);
        int[] offsetsX = [.. block.Select(t => (int)Math.Round((t.X - left) / downsample))];
        int[] offsetsY = [.. block.Select(t => (int)Math.Round((t.Y - top) / downsample))];
        int[] sizes = [.. block.Select(t => slide.LevelExtent(t.Width, grid.ReadLevel))];
        int width = block.Select((_, i) => offsetsX[i] + sizes[i]).Max(), height = block.Select((_, i) => offsetsY[i] + sizes[i]).Max();
        Raster region = slide.ReadRegionRgb(left, top, grid.ReadLevel, width, height);
        for (int i = 0; i < block.Length; i++)
        {
            cut(i, region, offsetsX[i], offsetsY[i], sizes[i]);
        }
    }
}

/// <summary>Tiles read together by <see cref="TileReader.ReadBatchesAsync"/>: their pixels are interleaved RGB (tile, row, column, channel).</summary>
/// <param name="Number">The number the caller's batch function gave these tiles.</param>
/// <param name="Tiles">The tiles, in the grid's order.</param>
/// <param name="Pixels">Tiles.Length x patch size² x 3 bytes.</param>
public sealed record TileBatch(int Number, Tile[] Tiles, byte[] Pixels);

/// <summary>Where each tile goes in <see cref="TileReader.ReadBatchesAsync"/>: batches in order of first appearance, and a slot in its batch.</summary>
internal sealed class BatchPlan
{
    private BatchPlan(int[] numbers, Tile[][] tiles, Dictionary<Tile, (int Batch, int Slot)> place) => (Numbers, Tiles, Place) = (numbers, tiles, place);

    /// <summary>The caller's number of each batch.</summary>
    public int[] Numbers { get; }

    /// <summary>The tiles of each batch, in the grid's order.</summary>
    public Tile[][] Tiles { get; }

    /// <summary>A tile's batch (index into <see cref="Tiles"/>) and slot in it.</summary>
    public Dictionary<Tile, (int Batch, int Slot)> Place { get; }

    public static BatchPlan Of(IReadOnlyList<Tile> tiles, Func<Tile, int> batchOf)
    {
        var numbers = new List<int>();
        var members = new List<List<Tile>>();
        var place = new Dictionary<Tile, (int, int)>(tiles.Count, ReferenceEqualityComparer.Instance);
        foreach (Tile tile in tiles)
        {
            int number = batchOf(tile);
            if (numbers.Count == 0 || number != numbers[^1])
            {
                if (numbers.Count > 0 && number < numbers[^1])
                {
                    throw new ArgumentException($"Batch numbers must not decrease along the grid's tiles: {number} follows {numbers[^1]}.", nameof(batchOf));
                }

                numbers.Add(number);
                members.Add([]);
            }

            place[tile] = (numbers.Count - 1, members[^1].Count);
            members[^1].Add(tile);
        }

        return new BatchPlan([.. numbers], [.. members.Select(m => m.ToArray())], place);
    }
}
