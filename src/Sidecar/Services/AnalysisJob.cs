using SlidePlugin.Engine.Analysis;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// One running analysis and the calls watching it. Events are kept only until every watcher has read them, so memory
/// does not grow with the slide; a watcher that joins late gets the header, then one snapshot of the tiles scored so
/// far (from the store), then live events (tiles already in the snapshot left out). The work stops when the last
/// watcher leaves (what was scored stays in the store) or when it ends.
/// </summary>
internal sealed class AnalysisJob : IDisposable
{
    private readonly object _gate = new();
    private readonly Func<IReadOnlyList<TileScore>> _scoredSoFar;
    private readonly List<AnalysisEvent> _window = [];    // events from sequence number _windowStart on
    private readonly Dictionary<object, long> _cursors = []; // each reading watcher's next sequence number
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _windowStart;
    private AnalysisEvent.Started? _started;
    private AnalysisEvent.Completed? _completed;
    private Exception? _failure;
    private bool _finished;
    private bool _abandoned;
    private int _watchers;

    /// <param name="key">The analysis.</param>
    /// <param name="scoredSoFar">Reads the tiles stored so far, for a watcher that joins after scoring began.</param>
    public AnalysisJob(string key, Func<IReadOnlyList<TileScore>> scoredSoFar)
    {
        Key = key;
        _scoredSoFar = scoredSoFar;
    }

    public string Key { get; }

    /// <summary>Fires when no one watches any more: the analysis should stop.</summary>
    public CancellationToken Stopping => _stop.Token;

    /// <summary>Events held for watchers that have not read them yet (for tests: it must not grow with the slide).</summary>
    internal int HeldEvents
    {
        get
        {
            lock (_gate)
            {
                return _window.Count;
            }
        }
    }

    /// <summary>Adds a watcher; false when the job ended or is stopping (start a new one: it resumes from the store).</summary>
    public bool TryWatch()
    {
        lock (_gate)
        {
            if (_finished || _abandoned)
            {
                return false;
            }

            _watchers++;
            return true;
        }
    }

    /// <summary>A watcher left; the last one stops the work.</summary>
    public void Leave()
    {
        bool last;
        lock (_gate)
        {
            last = --_watchers == 0 && !_finished;
            _abandoned |= last;
        }

        if (last)
        {
            try
            {
                _stop.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The work ended between the check and here: nothing left to stop.
            }
        }
    }

    public void Post(AnalysisEvent e)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            _started ??= e as AnalysisEvent.Started;
            _completed ??= e as AnalysisEvent.Completed;
            _window.Add(e);
            TrimLocked();
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }

    /// <summary>The work ended, successfully or with <paramref name="failure"/>.</summary>
    public void Finish(Exception? failure)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            _finished = true;
            _failure = failure;
            changed = _changed;
        }

        changed.TrySetResult();
    }

    /// <summary>The events from the start (or a snapshot of them for a late watcher), live until the work ends; rethrows its failure.</summary>
    public async IAsyncEnumerable<AnalysisEvent> WatchAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        object watcher = new();
        AnalysisEvent.Started? started;
        AnalysisEvent.Completed? completed;
        bool late;
        lock (_gate)
        {
            late = _windowStart + _window.Count > 0;
            _cursors[watcher] = late ? _windowStart + _window.Count : 0;
            started = _started;
            completed = _completed;
        }

        try
        {
            HashSet<int>? inSnapshot = null;
            if (late)
            {
                // Whatever was posted before the cursor was set is in the store (tiles are committed before they are
                // posted); tiles committed since may come again live, and are left out there.
                if (started is not null)
                {
                    yield return started;
                }

                if (completed is not null)
                {
                    yield return completed; // the result holds every tile
                    inSnapshot = [];
                }
                else
                {
                    IReadOnlyList<TileScore> snapshot = _scoredSoFar();
                    inSnapshot = [.. snapshot.Select(t => t.Index)];
                    if (started is not null)
                    {
                        yield return new AnalysisEvent.Scored(snapshot, snapshot.Count, started.Header.TileCount);
                    }
                }
            }

            while (true)
            {
                AnalysisEvent[] batch;
                Task changed;
                bool finished;
                Exception? failure;
                lock (_gate)
                {
                    long next = _cursors[watcher];
                    batch = [.. _window.Skip((int)(next - _windowStart))];
                    _cursors[watcher] = _windowStart + _window.Count;
                    TrimLocked();
                    changed = _changed.Task;
                    finished = _finished;
                    failure = _failure;
                }

                foreach (AnalysisEvent e in batch)
                {
                    if (inSnapshot is not null && e is AnalysisEvent.Scored scored)
                    {
                        TileScore[] fresh = [.. scored.Tiles.Where(t => !inSnapshot.Contains(t.Index))];
                        if (fresh.Length > 0)
                        {
                            yield return scored with { Tiles = fresh };
                        }
                    }
                    else if (inSnapshot is null || e is not AnalysisEvent.Started)
                    {
                        yield return e;
                    }
                }

                if (finished)
                {
                    if (failure is not null)
                    {
                        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
                    }

                    yield break;
                }

                await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            lock (_gate)
            {
                _cursors.Remove(watcher);
                TrimLocked();
            }
        }
    }

    public void Dispose() => _stop.Dispose();

    /// <summary>Drops the events every reading watcher has read (all of them when none reads).</summary>
    private void TrimLocked()
    {
        long end = _windowStart + _window.Count;
        long oldest = _cursors.Count == 0 ? end : Math.Min(end, _cursors.Values.Min());
        int drop = (int)(oldest - _windowStart);
        if (drop > 0)
        {
            _window.RemoveRange(0, drop);
            _windowStart = oldest;
        }
    }
}
