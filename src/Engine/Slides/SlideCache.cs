namespace SlidePlugin.Engine.Slides;

/// <summary>
/// Open slides kept for reuse, least recently used closed first. A slide is closed only when it has
/// left the cache and no lease on it remains, so an eviction never pulls a slide from under a reader.
/// A file changed on disk since it was opened is reopened; a slide whose error has latched is dropped
/// with <see cref="Invalidate"/> so that the next call reopens it. Thread-safe.
/// </summary>
public sealed class SlideCache : IDisposable
{
    private readonly int _capacity;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _entries = new(StringComparer.Ordinal);
    private readonly LinkedList<Entry> _recency = new(); // most recently used first
    private bool _disposed;

    /// <summary>Creates a cache that keeps at most <paramref name="capacity"/> slides open.</summary>
    public SlideCache(int capacity = 16)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
    }

    /// <summary>Slides open in the cache now.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>
    /// A lease on the slide at <paramref name="path"/> (a full path), opening it when it is not cached. Entries are kept
    /// under <paramref name="key"/> when given (what the file is, e.g. its device and inode), else under the path.
    /// Dispose the lease when done.
    /// </summary>
    /// <exception cref="SlideException">The slide is missing or OpenSlide cannot open it.</exception>
    public SlideLease Open(string path, string? key = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string cacheKey = key ?? path;
        DateTime written = File.Exists(path) ? File.GetLastWriteTimeUtc(path) : DateTime.MinValue;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_entries.TryGetValue(cacheKey, out LinkedListNode<Entry>? node))
            {
                if (node.Value.Written == written)
                {
                    _recency.Remove(node);
                    _recency.AddFirst(node);
                    return Lease(node.Value);
                }

                RemoveLocked(node);
            }
        }

        // Opening can be slow (MRXS, NDPI); it happens outside the lock, and a racing open of the same file is dropped.
        Slide opened = Slide.Open(path);
        lock (_gate)
        {
            if (_disposed)
            {
                opened.Dispose();
                throw new ObjectDisposedException(nameof(SlideCache));
            }

            if (_entries.TryGetValue(cacheKey, out LinkedListNode<Entry>? raced) && raced.Value.Written == written)
            {
                opened.Dispose();
                _recency.Remove(raced);
                _recency.AddFirst(raced);
                return Lease(raced.Value);
            }

            if (raced is not null)
            {
                RemoveLocked(raced);
            }

            var entry = new Entry(cacheKey, opened, written);
            _entries[cacheKey] = _recency.AddFirst(entry);
            while (_entries.Count > _capacity)
            {
                RemoveLocked(_recency.Last!);
            }

            return Lease(entry);
        }
    }

    /// <summary>Drops <paramref name="slide"/> from the cache (after a latched error); it closes when its last lease ends.</summary>
    public void Invalidate(Slide slide)
    {
        ArgumentNullException.ThrowIfNull(slide);
        lock (_gate)
        {
            if (_entries.Values.FirstOrDefault(n => ReferenceEquals(n.Value.Slide, slide)) is { } node)
            {
                RemoveLocked(node);
            }
        }
    }

    /// <summary>Closes every slide that no lease holds; the others close when their leases end.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            while (_recency.First is { } node)
            {
                RemoveLocked(node);
            }
        }
    }

    private SlideLease Lease(Entry entry)
    {
        entry.Leases++;
        return new SlideLease(this, entry);
    }

    private void RemoveLocked(LinkedListNode<Entry> node)
    {
        _recency.Remove(node);
        _entries.Remove(node.Value.Key);
        node.Value.Evicted = true;
        if (node.Value.Leases == 0)
        {
            node.Value.Slide.Dispose();
        }
    }

    internal void Release(Entry entry)
    {
        lock (_gate)
        {
            entry.Leases--;
            if (entry.Evicted && entry.Leases == 0)
            {
                entry.Slide.Dispose();
            }
        }
    }

    internal sealed class Entry(string key, Slide slide, DateTime written)
    {
        public string Key { get; } = key;

        public Slide Slide { get; } = slide;

        public DateTime Written { get; } = written;

        public int Leases { get; set; }

        public bool Evicted { get; set; }
    }
}

/// <summary>A slide borrowed from a <see cref="SlideCache"/>; dispose it to give it back.</summary>
public sealed class SlideLease : IDisposable
{
    private readonly SlideCache _cache;
    private readonly SlideCache.Entry _entry;
    private int _released;

    internal SlideLease(SlideCache cache, SlideCache.Entry entry)
    {
        _cache = cache;
        _entry = entry;
    }

    /// <summary>The open slide; valid until this lease is disposed.</summary>
    public Slide Slide => _entry.Slide;

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            _cache.Release(_entry);
        }
    }
}
