using Grpc.Core;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// At most <c>running</c> pieces of one kind of heavy work at once, at most <c>waiting</c> more queued behind them, and
/// RESOURCE_EXHAUSTED past that: so many streams or tissue detections cannot take every thread and all the memory, and
/// metadata and health calls stay answered.
/// </summary>
internal sealed class WorkLimiter(string what, int running, int waiting) : IDisposable
{
    private readonly SemaphoreSlim _slots = new(running, running);
    private int _admitted;

    /// <summary>How many may run at once.</summary>
    public int Running => running;

    /// <summary>
    /// Waits for a slot; the returned handle frees it. <paramref name="admitted"/>: the caller was already admitted by
    /// another limiter that bounds it (a tile stream's tissue step), so it queues without counting against the wait limit.
    /// </summary>
    /// <exception cref="RpcException">RESOURCE_EXHAUSTED when <c>running</c> run and <c>waiting</c> wait already.</exception>
    public async Task<IDisposable> EnterAsync(CancellationToken cancellationToken, bool admitted = false)
    {
        if (Interlocked.Increment(ref _admitted) > running + waiting && !admitted)
        {
            Interlocked.Decrement(ref _admitted);
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"{running} {what} are running and {waiting} waiting, the server's limit; try again when one has finished."));
        }

        try
        {
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Interlocked.Decrement(ref _admitted);
            throw;
        }

        return new Slot(this);
    }

    public void Dispose() => _slots.Dispose();

    private sealed class Slot(WorkLimiter limiter) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                limiter._slots.Release();
                Interlocked.Decrement(ref limiter._admitted);
            }
        }
    }
}
