using SlidePlugin.Engine.Analysis;
using SlidePlugin.Sidecar.Services;

namespace SlidePlugin.Sidecar.Tests.Services;

public sealed class AnalysisJobTests
{
    private static readonly AnalysisHeader Header = new("k", "/s.svs", 100, 100, 0.5, "m", "sha", ["a", "b"], 0.5, 32, 32, 100, 100, 10_000, 0);

    private static AnalysisEvent.Scored Batch(int first, int count) =>
        new([.. Enumerable.Range(first, count).Select(i => new TileScore(i, i, 0, 32, 32, 0.1f, [0.5f, 0.5f]))], first + count, 10_000);

    [Fact]
    public async Task Post_ManyBatchesWhileAWatcherReads_HeldEventsStayBoundedNotGrowingWithTheSlide()
    {
        var stored = new List<TileScore>();
        using var job = new AnalysisJob("k", () => [.. stored]);
        Assert.True(job.TryWatch());
        await using IAsyncEnumerator<AnalysisEvent> reader = job.WatchAsync(CancellationToken.None).GetAsyncEnumerator();
        job.Post(new AnalysisEvent.Started(Header));
        Assert.True(await reader.MoveNextAsync());

        int maxHeld = 0;
        for (int b = 0; b < 100; b++)
        {
            AnalysisEvent.Scored batch = Batch(b * 100, 100);
            stored.AddRange(batch.Tiles);
            job.Post(batch);
            Assert.True(await reader.MoveNextAsync());
            maxHeld = Math.Max(maxHeld, job.HeldEvents);
        }

        Assert.InRange(maxHeld, 0, 2); // all 100 batches were kept before
    }

    [Fact]
    public async Task WatchAsync_LateJoiner_HeaderThenSnapshotFromTheStoreThenOnlyNewTiles()
    {
        var stored = new List<TileScore>();
        using var job = new AnalysisJob("k", () => [.. stored]);
        job.TryWatch();
        await using IAsyncEnumerator<AnalysisEvent> first = job.WatchAsync(CancellationToken.None).GetAsyncEnumerator();
        job.Post(new AnalysisEvent.Started(Header));
        Assert.True(await first.MoveNextAsync());
        for (int b = 0; b < 5; b++)
        {
            AnalysisEvent.Scored batch = Batch(b * 10, 10);
            stored.AddRange(batch.Tiles);
            job.Post(batch);
            Assert.True(await first.MoveNextAsync());
        }

        // Tiles 50-59 are committed to the store before the late joiner arrives, but posted after it does.
        AnalysisEvent.Scored racing = Batch(50, 10);
        stored.AddRange(racing.Tiles);
        Assert.True(job.TryWatch());
        await using IAsyncEnumerator<AnalysisEvent> late = job.WatchAsync(CancellationToken.None).GetAsyncEnumerator();
        Assert.True(await late.MoveNextAsync());
        Assert.IsType<AnalysisEvent.Started>(late.Current);
        Assert.True(await late.MoveNextAsync());
        var snapshot = Assert.IsType<AnalysisEvent.Scored>(late.Current);
        Assert.Equal(Enumerable.Range(0, 60), snapshot.Tiles.Select(t => t.Index));

        job.Post(racing);
        AnalysisEvent.Scored next = Batch(60, 10);
        stored.AddRange(next.Tiles);
        job.Post(next);
        job.Finish(null);
        var live = new List<int>();
        while (await late.MoveNextAsync())
        {
            live.AddRange(Assert.IsType<AnalysisEvent.Scored>(late.Current).Tiles.Select(t => t.Index));
        }

        Assert.Equal(Enumerable.Range(60, 10), live); // the racing batch is not sent twice
    }
}
