using System.Collections;

namespace SlidePlugin.Grpc;

/// <summary>
/// Custom metadata (headers or trailers). Keys are lower case ASCII (<c>[0-9a-z_.-]</c>); keys ending in
/// <c>-bin</c> carry bytes, sent base64-encoded; other values are printable ASCII strings.
/// </summary>
public sealed class Metadata : IList<Metadata.Entry>
{
    /// <summary>Suffix of binary keys.</summary>
    public const string BinaryHeaderSuffix = "-bin";

    private readonly List<Entry> _entries = [];

    /// <summary>Adds a string entry.</summary>
    public void Add(string key, string value) => _entries.Add(new Entry(key, value));

    /// <summary>Adds a binary entry (the key must end in <c>-bin</c>).</summary>
    public void Add(string key, byte[] valueBytes) => _entries.Add(new Entry(key, valueBytes));

    /// <summary>
    /// The caller's metadata among HTTP headers or trailers: protocol headers skipped, keys lower-cased,
    /// <c>-bin</c> values base64-decoded. Client and server read metadata through this one method.
    /// </summary>
    public static Metadata FromHeaders(IEnumerable<(string Name, IEnumerable<string?> Values)> headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        var metadata = new Metadata();
        foreach ((string name, IEnumerable<string?> values) in headers)
        {
            if (GrpcProtocol.IsReservedHeader(name))
            {
                continue;
            }

            string key = name.ToLowerInvariant();
            foreach (string? value in values)
            {
                if (value is null)
                {
                    continue;
                }

                metadata.Add(Entry.IsBinaryKey(key) ? new Entry(key, GrpcProtocol.DecodeBinaryHeader(value)) : new Entry(key, value));
            }
        }

        return metadata;
    }

    /// <summary>The first entry with this key, or null.</summary>
    public Entry? Get(string key)
    {
        string normalized = Entry.NormalizeKey(key);
        return _entries.LastOrDefault(e => e.Key == normalized);
    }

    /// <summary>The string value of the last entry with this key, or null.</summary>
    public string? GetValue(string key) => Get(key)?.Value;

    /// <summary>The bytes of the last entry with this key, or null.</summary>
    public byte[]? GetValueBytes(string key) => Get(key)?.ValueBytes;

    /// <inheritdoc />
    public Entry this[int index] { get => _entries[index]; set => _entries[index] = value; }

    /// <inheritdoc />
    public int Count => _entries.Count;

    /// <inheritdoc />
    public bool IsReadOnly => false;

    /// <inheritdoc />
    public void Add(Entry item) => _entries.Add(item);

    /// <inheritdoc />
    public void Clear() => _entries.Clear();

    /// <inheritdoc />
    public bool Contains(Entry item) => _entries.Contains(item);

    /// <inheritdoc />
    public void CopyTo(Entry[] array, int arrayIndex) => _entries.CopyTo(array, arrayIndex);

    /// <inheritdoc />
    public IEnumerator<Entry> GetEnumerator() => _entries.GetEnumerator();

    /// <inheritdoc />
    public int IndexOf(Entry item) => _entries.IndexOf(item);

    /// <inheritdoc />
    public void Insert(int index, Entry item) => _entries.Insert(index, item);

    /// <inheritdoc />
    public bool Remove(Entry item) => _entries.Remove(item);

    /// <inheritdoc />
    public void RemoveAt(int index) => _entries.RemoveAt(index);

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>One metadata entry.</summary>
    public sealed class Entry
    {
        private readonly string? _value;
        private readonly byte[]? _valueBytes;

        /// <summary>A string entry.</summary>
        public Entry(string key, string value)
        {
            Key = NormalizeKey(key);
            if (IsBinaryKey(Key))
            {
                throw new ArgumentException($"Key '{Key}' ends in '-bin': give its value as bytes.", nameof(key));
            }

            ArgumentNullException.ThrowIfNull(value);
            foreach (char c in value)
            {
                if (c < 0x20 || c > 0x7E)
                {
                    throw new ArgumentException($"Metadata value of '{Key}' must be printable ASCII; use a '-bin' key for other data.", nameof(value));
                }
            }

            _value = value;
        }

        /// <summary>A binary entry.</summary>
        public Entry(string key, byte[] valueBytes)
        {
            Key = NormalizeKey(key);
            if (!IsBinaryKey(Key))
            {
                throw new ArgumentException($"Key '{Key}' carries bytes and must end in '-bin'.", nameof(key));
            }

            _valueBytes = valueBytes ?? throw new ArgumentNullException(nameof(valueBytes));
        }

        /// <summary>The key, lower case.</summary>
        public string Key { get; }

        /// <summary>True for <c>-bin</c> keys.</summary>
        public bool IsBinary => _valueBytes is not null;

        /// <summary>The string value; for binary entries, their bytes as base64.</summary>
        public string Value => _value ?? Convert.ToBase64String(_valueBytes!);

        /// <summary>The value as it goes into an HTTP header: the string, or for binary entries unpadded base64.</summary>
        public string HeaderValue => _valueBytes is null ? _value! : GrpcProtocol.EncodeBinaryHeader(_valueBytes);

        /// <summary>The bytes of a binary entry; for string entries, their ASCII bytes.</summary>
        public byte[] ValueBytes => _valueBytes ?? System.Text.Encoding.ASCII.GetBytes(_value!);

        /// <summary>True when <paramref name="key"/> names binary metadata.</summary>
        public static bool IsBinaryKey(string key) => key.EndsWith(BinaryHeaderSuffix, StringComparison.OrdinalIgnoreCase);

        internal static string NormalizeKey(string key)
        {
            ArgumentException.ThrowIfNullOrEmpty(key);
            string lower = key.ToLowerInvariant();
            foreach (char c in lower)
            {
                if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '_' or '.' or '-'))
                {
                    throw new ArgumentException($"Metadata key '{key}' may hold only 0-9, a-z, '_', '.' and '-'.", nameof(key));
                }
            }

            return lower;
        }

        /// <inheritdoc />
        public override string ToString() => $"{Key}: {Value}";
    }
}
