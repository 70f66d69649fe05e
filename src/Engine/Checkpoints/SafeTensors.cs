using System.Buffers.Binary;
using System.Text.Json;
using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Checkpoints;

/// <summary>
/// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
/// <c>{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}</c>, then the tensors'
/// raw little-endian bytes, offsets counted from the end of the header. Reading checks the whole header before any
/// tensor is used: a truncated or corrupt file is rejected, never half-loaded.
/// </summary>
public static class SafeTensors
{
    /// <summary>Largest header accepted (the reference implementation's limit).</summary>
    public const int MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    /// <summary>
    /// Writes float32 tensors (sorted by name) and string metadata to <paramref name="path"/>: first to a temporary
    /// file, then renamed, so a crash never leaves a partial checkpoint.
    /// </summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicFile.Write(path, ".safetensors", temporary => SaveTo(temporary, tensors, metadata));

    /// <summary>
    /// Writes what <see cref="Save"/> writes straight to <paramref name="file"/> (a new file), for callers that publish
    /// it themselves, such as <see cref="AtomicFile.WriteTogether"/> with a card.
    /// </summary>
    internal static void SaveTo(string file, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var names = tensors.Keys.Order(StringComparer.Ordinal).ToList();
        WriteTo(file, file, [.. names.Select(n => new SafeTensorsLayout(n, "F32", [.. tensors[n].Shape.Select(d => (long)d)]))], metadata, stream =>
        {
            foreach (string name in names)
            {
                WriteLittleEndian(stream, tensors[name].Data);
            }
        });
    }

    /// <summary>
    /// Writes tensors whose bytes <paramref name="writeData"/> streams, in the order of <paramref name="tensors"/> (little
    /// endian, exactly the sizes their dtypes and shapes give), with string metadata; to a temporary file, then renamed.
    /// For tensors too large to hold, such as a slide's features.
    /// </summary>
    /// <exception cref="InvalidDataException"><paramref name="writeData"/> wrote another number of bytes than the layout says.</exception>
    public static void Write(string path, IReadOnlyList<SafeTensorsLayout> tensors, IReadOnlyDictionary<string, string>? metadata, Action<Stream> writeData) =>
        AtomicFile.Write(path, ".safetensors", temporary => WriteTo(temporary, path, tensors, metadata, writeData));

    /// <summary>Writes the safetensors file to <paramref name="file"/> (a new file); <paramref name="path"/> names it in errors.</summary>
    private static void WriteTo(string file, string path, IReadOnlyList<SafeTensorsLayout> tensors, IReadOnlyDictionary<string, string>? metadata, Action<Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(writeData);
        using var header = new MemoryStream();
        long offset = 0;
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach ((string key, string value) in metadata.OrderBy(m => m.Key, StringComparer.Ordinal))
                {
                    json.WriteString(key, value);
                }

                json.WriteEndObject();
            }

            foreach (SafeTensorsLayout tensor in tensors)
            {
                if (tensor.Name == MetadataKey)
                {
                    throw new ArgumentException($"'{MetadataKey}' is reserved for metadata.", nameof(tensors));
                }

                long size = tensor.Shape.Aggregate(1L, (product, d) => product * d)
                    * (SafeTensorEntry.ElementSizeOf(tensor.Dtype) ?? throw new ArgumentException($"Unknown dtype '{tensor.Dtype}'.", nameof(tensors)));
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", tensor.Dtype);
                json.WriteStartArray("shape");
                foreach (long dimension in tensor.Shape)
                {
                    json.WriteNumberValue(dimension);
                }

                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + size);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += size;
            }

            json.WriteEndObject();
        }

        // The data starts 8-byte aligned, as the reference writer pads the header with spaces.
        int headerLength = (int)header.Length;
        int padded = (headerLength + 7) / 8 * 8;
        using var stream = new FileStream(file, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
        stream.Write(length);
        stream.Write(header.GetBuffer().AsSpan(0, headerLength));
        for (int i = headerLength; i < padded; i++)
        {
            stream.WriteByte((byte)' ');
        }

        writeData(stream);
        if (stream.Position != 8 + padded + offset)
        {
            throw new InvalidDataException($"The tensors of '{path}' came to {stream.Position - 8 - padded} bytes, not the {offset} their shapes give.");
        }
    }

    /// <summary>The metadata of a safetensors file, from its header alone (the tensors may be larger than memory).</summary>
    /// <exception cref="SafeTensorsException">The header is truncated, too large or not JSON.</exception>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        using FileStream file = File.OpenRead(path);
        Span<byte> length = stackalloc byte[8];
        if (file.ReadAtLeast(length, 8, throwOnEndOfStream: false) < 8)
        {
            throw new SafeTensorsException(path, "is too short for the 8-byte header length");
        }

        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(length);
        if (headerLength > MaxHeaderBytes || headerLength > (ulong)(file.Length - 8))
        {
            throw new SafeTensorsException(path, $"declares a {headerLength}-byte header that the file cannot hold");
        }

        byte[] header = new byte[headerLength];
        file.ReadExactly(header);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using JsonDocument document = JsonDocument.Parse(header);
            if (document.RootElement.TryGetProperty(MetadataKey, out JsonElement items))
            {
                foreach (JsonProperty item in items.EnumerateObject())
                {
                    metadata[item.Name] = item.Value.GetString() ?? "";
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new SafeTensorsException(path, $"has a header that is not valid safetensors JSON: {e.Message}", e);
        }

        return metadata;
    }

    /// <summary>Reads and validates a safetensors file.</summary>
    /// <exception cref="SafeTensorsException">The file is not a well-formed safetensors file; the message says what is wrong.</exception>
    public static SafeTensorsFile Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new SafeTensorsException(path, $"cannot be read: {e.Message}", e);
        }

        return Parse(path, bytes);
    }

    /// <summary>Validates safetensors <paramref name="bytes"/>; <paramref name="source"/> names them in errors.</summary>
    public static SafeTensorsFile Parse(string source, byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length < 8)
        {
            throw new SafeTensorsException(source, $"is {bytes.Length} bytes, too short for the 8-byte header length");
        }

        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > MaxHeaderBytes)
        {
            throw new SafeTensorsException(source, $"declares a {headerLength}-byte header, more than the {MaxHeaderBytes} allowed");
        }

        if (headerLength > (ulong)(bytes.Length - 8))
        {
            throw new SafeTensorsException(source, $"declares a {headerLength}-byte header but only {bytes.Length - 8} bytes follow (truncated?)");
        }

        int dataStart = 8 + (int)headerLength;
        var entries = new Dictionary<string, SafeTensorEntry>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using JsonDocument document = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new SafeTensorsException(source, "has a header that is not a JSON object");
            }

            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                if (entries.ContainsKey(property.Name) || (property.Name == MetadataKey && metadata.Count > 0))
                {
                    throw new SafeTensorsException(source, $"names '{property.Name}' twice");
                }

                if (property.Name == MetadataKey)
                {
                    foreach (JsonProperty item in property.Value.EnumerateObject())
                    {
                        metadata[item.Name] = item.Value.ValueKind == JsonValueKind.String
                            ? item.Value.GetString()!
                            : throw new SafeTensorsException(source, $"has metadata '{item.Name}' that is not a string");
                    }

                    continue;
                }

                entries[property.Name] = ParseEntry(source, property, bytes.Length - dataStart);
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or OverflowException or ArgumentException or KeyNotFoundException)
        {
            throw new SafeTensorsException(source, $"has a header that is not valid safetensors JSON: {e.Message}", e);
        }

        CheckLayout(source, entries, bytes.Length - dataStart);
        return new SafeTensorsFile(entries, metadata, bytes, dataStart);
    }

    private static SafeTensorEntry ParseEntry(string source, JsonProperty property, long dataLength)
    {
        JsonElement value = property.Value;
        string dtype = value.GetProperty("dtype").GetString() ?? "";
        int elementSize = SafeTensorEntry.ElementSizeOf(dtype)
            ?? throw new SafeTensorsException(source, $"gives tensor '{property.Name}' the unknown dtype '{dtype}'");
        int[] shape = value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
        if (shape.Any(d => d < 0))
        {
            throw new SafeTensorsException(source, $"gives tensor '{property.Name}' a negative dimension");
        }

        long[] offsets = value.GetProperty("data_offsets").EnumerateArray().Select(o => o.GetInt64()).ToArray();
        if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
        {
            throw new SafeTensorsException(source,
                $"gives tensor '{property.Name}' data offsets [{string.Join(", ", offsets)}] outside the {dataLength} data bytes (truncated?)");
        }

        long elements = shape.Aggregate(1L, (product, d) => product * d);
        if (elements * elementSize != offsets[1] - offsets[0])
        {
            throw new SafeTensorsException(source,
                $"gives tensor '{property.Name}' {offsets[1] - offsets[0]} bytes, but {dtype} {Tensor.ShapeText(shape)} needs {elements * elementSize}");
        }

        return new SafeTensorEntry(property.Name, dtype, shape, offsets[0], offsets[1]);
    }

    /// <summary>Tensors may not overlap, and, as the reference implementation requires, must cover the data exactly.</summary>
    private static void CheckLayout(string source, Dictionary<string, SafeTensorEntry> entries, long dataLength)
    {
        long expected = 0;
        foreach (SafeTensorEntry entry in entries.Values.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (entry.Begin < expected)
            {
                throw new SafeTensorsException(source, $"has tensor '{entry.Name}' overlapping another at byte {entry.Begin}");
            }

            if (entry.Begin > expected)
            {
                throw new SafeTensorsException(source, $"leaves data bytes {expected}..{entry.Begin} outside every tensor");
            }

            expected = entry.End;
        }

        if (expected != dataLength)
        {
            throw new SafeTensorsException(source, $"has {dataLength - expected} data bytes after the last tensor");
        }
    }

    /// <summary>Writes float32 values little endian, as safetensors (and the features' batch files) store them.</summary>
    internal static void WriteLittleEndian(Stream stream, ReadOnlySpan<float> values)
    {
        if (BitConverter.IsLittleEndian)
        {
            stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));
            return;
        }

        Span<byte> word = stackalloc byte[4];
        foreach (float value in values)
        {
            BinaryPrimitives.WriteSingleLittleEndian(word, value);
            stream.Write(word);
        }
    }
}

/// <summary>A safetensors file that failed validation.</summary>
public sealed class SafeTensorsException : Exception
{
    /// <summary>Creates the exception: "<paramref name="source"/> <paramref name="problem"/>".</summary>
    public SafeTensorsException(string source, string problem, Exception? innerException = null)
        : base($"Safetensors file '{source}' {problem}.", innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public SafeTensorsException() { }

    /// <summary>Creates the exception with its message.</summary>
    public SafeTensorsException(string message) : base(message) { }

    /// <summary>Creates the exception with its message and cause.</summary>
    public SafeTensorsException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>A tensor to write with <see cref="SafeTensors.Write"/>: name, dtype (F32, I64, ...) and shape.</summary>
/// <param name="Name">Its name.</param>
/// <param name="Dtype">Its safetensors dtype.</param>
/// <param name="Shape">Its shape.</param>
public sealed record SafeTensorsLayout(string Name, string Dtype, IReadOnlyList<long> Shape);

/// <summary>One tensor's header entry.</summary>
/// <param name="Name">Its name.</param>
/// <param name="Dtype">F32, F16, BF16, F64, I64, I32, ...</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Begin">First data byte, from the end of the header.</param>
/// <param name="End">One past the last data byte.</param>
public sealed record SafeTensorEntry(string Name, string Dtype, IReadOnlyList<int> Shape, long Begin, long End)
{
    /// <summary>Bytes per element of a safetensors dtype, or null when the dtype is unknown.</summary>
    public static int? ElementSizeOf(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "BOOL" or "U8" or "I8" or "F8_E4M3" or "F8_E5M2" => 1,
        _ => null,
    };
}

/// <summary>A validated safetensors file in memory.</summary>
public sealed class SafeTensorsFile
{
    private readonly byte[] _bytes;
    private readonly int _dataStart;

    internal SafeTensorsFile(IReadOnlyDictionary<string, SafeTensorEntry> entries, IReadOnlyDictionary<string, string> metadata, byte[] bytes, int dataStart)
    {
        Entries = entries;
        Metadata = metadata;
        _bytes = bytes;
        _dataStart = dataStart;
    }

    /// <summary>The tensors by name.</summary>
    public IReadOnlyDictionary<string, SafeTensorEntry> Entries { get; }

    /// <summary>The <c>__metadata__</c> strings.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Lower-case hex SHA-256 of the bytes that were validated (the whole file).</summary>
    public string Sha256() => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(_bytes));

    /// <summary>
    /// The tensor <paramref name="name"/> as float32. F32 is copied exactly; F16, BF16, F64 and integer dtypes are
    /// converted (PyTorch saves <c>num_batches_tracked</c> as I64).
    /// </summary>
    public Tensor ToTensor(string name)
    {
        SafeTensorEntry entry = Entries.TryGetValue(name, out SafeTensorEntry? found)
            ? found
            : throw new KeyNotFoundException($"No tensor '{name}' in the file.");
        ReadOnlySpan<byte> data = _bytes.AsSpan(_dataStart + (int)entry.Begin, (int)(entry.End - entry.Begin));
        Tensor tensor = Tensor.Empty(entry.Shape.ToArray());
        Span<float> values = tensor.Data;
        int size = SafeTensorEntry.ElementSizeOf(entry.Dtype)!.Value;
        for (int i = 0; i < values.Length; i++)
        {
            ReadOnlySpan<byte> e = data.Slice(i * size, size);
            values[i] = entry.Dtype switch
            {
                "F32" => BinaryPrimitives.ReadSingleLittleEndian(e),
                "F64" => (float)BinaryPrimitives.ReadDoubleLittleEndian(e),
                "F16" => (float)BinaryPrimitives.ReadHalfLittleEndian(e),
                "BF16" => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(e) << 16),
                "I64" => BinaryPrimitives.ReadInt64LittleEndian(e),
                "I32" => BinaryPrimitives.ReadInt32LittleEndian(e),
                "U8" or "BOOL" => e[0],
                _ => throw new SafeTensorsException($"Tensor '{name}' has dtype {entry.Dtype}, which the engine does not convert to float32."),
            };
        }

        return tensor;
    }

    /// <summary>Every tensor as float32, by name.</summary>
    public IReadOnlyDictionary<string, Tensor> ToTensors() =>
        Entries.Keys.ToDictionary(name => name, ToTensor, StringComparer.Ordinal);
}
