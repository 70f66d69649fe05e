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
}
