using SlidePlugin.Engine.Analysis;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// One running analysis and the calls watching it. Every event is kept in order, so a watcher that joins late replays
/// them from the start and then follows live. The work stops when the last watcher leaves (what was scored stays in
/// the store) or when it ends.
/// </summary>
internal sealed class AnalysisJob : IDisposable
{
    private readonly List<AnalysisEvent> _events = [];
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Exception? _failure;
    private bool _finished;
    private bool _abandoned;
    private int _watchers;

    public AnalysisJob(string key) => Key = key;

    public string Key { get; }

    /// <summary>Fires when no one watches any more: the analysis should stop.</summary>
    public CancellationToken Stopping => _stop.Token;

    /// <summary>Adds a watcher; false when the job ended or is stopping (start a new one: it resumes from the store).</summary>
    public bool TryWatch()
    {
        lock (_events)
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
        lock (_events)
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
        lock (_events)
        {
            _events.Add(e);
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }

    /// <summary>The work ended, successfully or with <paramref name="failure"/>.</summary>
    public void Finish(Exception? failure)
    {
        TaskCompletionSource changed;
        lock (_events)
        {
            _finished = true;
            _failure = failure;
            changed = _changed;
        }

        changed.TrySetResult();
    }

    /// <summary>Every event from the first, live until the work ends; rethrows its failure.</summary>
    public async IAsyncEnumerable<AnalysisEvent> WatchAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        int next = 0;
        while (true)
        {
            AnalysisEvent[] batch;
            Task changed;
            bool finished;
            Exception? failure;
            lock (_events)
            {
                batch = [.. _events.Skip(next)];
                next = _events.Count;
                changed = _changed.Task;
                finished = _finished;
                failure = _failure;
            }

            foreach (AnalysisEvent e in batch)
            {
                yield return e;
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

    public void Dispose() => _stop.Dispose();
}
