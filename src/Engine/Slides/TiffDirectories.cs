using System.Buffers.Binary;

namespace SlidePlugin.Engine.Slides;

/// <summary>The tags of one TIFF directory (page) that decide whether libvips may decode it in OpenSlide's place.</summary>
/// <param name="Width">ImageWidth (256).</param>
/// <param name="Height">ImageLength (257).</param>
/// <param name="TileWidth">TileWidth (322), or 0 for a page in strips.</param>
/// <param name="TileHeight">TileLength (323), or 0 for a page in strips.</param>
/// <param name="Compression">Compression (259); 1 when absent, as TIFF says.</param>
/// <param name="Photometric">PhotometricInterpretation (262), or -1 when absent.</param>
/// <param name="SamplesPerPixel">SamplesPerPixel (277); 1 when absent.</param>
/// <param name="BitsPerSample">The first BitsPerSample (258) value; 1 when absent.</param>
internal readonly record struct TiffDirectory(long Width, long Height, long TileWidth, long TileHeight, int Compression, int Photometric, int SamplesPerPixel, int BitsPerSample)
{
    /// <summary>Whether the file's numbers are little-endian ("II").</summary>
    public bool LittleEndian { get; init; }

    /// <summary>Where TileOffsets (324) lie, or default when absent.</summary>
    public TiffValues TileOffsets { get; init; }

    /// <summary>Where TileByteCounts (325) lie, or default when absent.</summary>
    public TiffValues TileByteCounts { get; init; }

    /// <summary>Where JPEGTables (347) lie, or default when absent.</summary>
    public TiffValues JpegTables { get; init; }

    /// <summary>Whether the page is stored in tiles.</summary>
    public bool Tiled => TileWidth > 0 && TileHeight > 0;

    /// <summary>A name for a compression code, for log lines ("33005 (Aperio JPEG 2000, RGB)").</summary>
    public static string CompressionName(int code) => code switch
    {
        1 => "1 (none)",
        5 => "5 (LZW)",
        6 => "6 (old-style JPEG)",
        7 => "7 (JPEG)",
        8 or 32946 => $"{code} (Deflate)",
        32773 => "32773 (PackBits)",
        33003 => "33003 (Aperio JPEG 2000, YCbCr)",
        33004 => "33004 (Aperio JPEG 2000)",
        33005 => "33005 (Aperio JPEG 2000, RGB)",
        34712 => "34712 (JPEG 2000)",
        50001 => "50001 (WebP)",
        _ => code.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>The values of one TIFF tag, read when needed: their TIFF type, their count, and where in the file they lie.</summary>
/// <param name="Type">TIFF field type (3 SHORT, 4 LONG, 7 UNDEFINED, 16 LONG8).</param>
/// <param name="Count">Number of values.</param>
/// <param name="FileOffset">Position of the first value (inside the entry when they fit there).</param>
internal readonly record struct TiffValues(int Type, long Count, long FileOffset)
{
    /// <summary>Bytes a value of <see cref="Type"/> takes; 0 for types not read here.</summary>
    public int ValueSize => Type switch { 3 => 2, 4 => 4, 16 => 8, 1 or 7 => 1, _ => 0 };
}

/// <summary>
/// Reads the directories of a TIFF or BigTIFF file (either byte order): only the few tags <see cref="TiffDirectory"/>
/// holds. Bounded against hostile files: at most <see cref="MaxDirectories"/> directories, a loop of directory offsets
/// ends the list, and every read stays inside the file.
/// </summary>
internal static class TiffDirectories
{
    private const int MaxDirectories = 256;
    private const int MaxEntries = 4096;

    /// <summary>The file's directories in order; an empty list for a file that is not TIFF.</summary>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static IReadOnlyList<TiffDirectory> Read(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 4096, FileOptions.RandomAccess);
        Span<byte> header = stackalloc byte[16];
        if (file.Length < 8 || file.Read(header) < 8)
        {
            return [];
        }

        bool little = header[0] == (byte)'I' && header[1] == (byte)'I';
        if (!little && !(header[0] == (byte)'M' && header[1] == (byte)'M'))
        {
            return [];
        }

        var reader = new Reader(file, little);
        int version = reader.U16(header[2..]);
        bool big = version == 43;
        if (version != 42 && !(big && reader.U16(header[4..]) == 8))
        {
            return [];
        }

        long offset = big ? (long)reader.U64(header[8..]) : reader.U32(header[4..]);
        var directories = new List<TiffDirectory>();
        var seen = new HashSet<long>();
        while (offset > 0 && directories.Count < MaxDirectories && seen.Add(offset))
        {
            if (reader.ReadDirectory(offset, big) is not { } next)
            {
                break;
            }

            directories.Add(next.Directory);
            offset = next.NextOffset;
        }

        return directories;
    }

    /// <summary>
    /// The SHORT, LONG or LONG8 values of a tag (tile offsets, tile byte counts), widened; LONG8 values past
    /// <see cref="long.MaxValue"/> become it.
    /// </summary>
    /// <exception cref="IOException">The tag does not hold numbers, or the file ends inside its values.</exception>
    public static long[] ReadNumbers(Microsoft.Win32.SafeHandles.SafeFileHandle file, TiffValues values, bool little)
    {
        int size = values.ValueSize;
        if (size is not (2 or 4 or 8))
        {
            throw new IOException($"TIFF type {values.Type} is not a number list.");
        }

        var bytes = new byte[values.Count * size];
        if (RandomAccess.Read(file, bytes, values.FileOffset) != bytes.Length)
        {
            throw new IOException("The TIFF file ends inside a tag's values.");
        }

        var numbers = new long[values.Count];
        for (int i = 0; i < numbers.Length; i++)
        {
            numbers[i] = Number(bytes.AsSpan(i * size, size), size, little);
        }

        return numbers;
    }

    /// <summary>An unsigned number of <paramref name="size"/> bytes (2, 4 or 8) in the file's byte order; 8-byte ones past <see cref="long.MaxValue"/> become it.</summary>
    private static long Number(ReadOnlySpan<byte> bytes, int size, bool little) => size switch
    {
        2 => little ? BinaryPrimitives.ReadUInt16LittleEndian(bytes) : BinaryPrimitives.ReadUInt16BigEndian(bytes),
        4 => little ? BinaryPrimitives.ReadUInt32LittleEndian(bytes) : BinaryPrimitives.ReadUInt32BigEndian(bytes),
        _ => (long)Math.Min(little ? BinaryPrimitives.ReadUInt64LittleEndian(bytes) : BinaryPrimitives.ReadUInt64BigEndian(bytes), long.MaxValue),
    };

    private sealed class Reader(FileStream file, bool little)
    {
        private readonly byte[] _buffer = new byte[20];

        public int U16(ReadOnlySpan<byte> bytes) => (int)Number(bytes, 2, little);

        public long U32(ReadOnlySpan<byte> bytes) => Number(bytes, 4, little);

        public ulong U64(ReadOnlySpan<byte> bytes) => little ? BinaryPrimitives.ReadUInt64LittleEndian(bytes) : BinaryPrimitives.ReadUInt64BigEndian(bytes);

        public (TiffDirectory Directory, long NextOffset)? ReadDirectory(long offset, bool big)
        {
            int countSize = big ? 8 : 2, entrySize = big ? 20 : 12, offsetSize = big ? 8 : 4;
            if (!TryRead(offset, countSize))
            {
                return null;
            }

            long entries = big ? (long)Math.Min(U64(_buffer), MaxEntries + 1UL) : U16(_buffer);
            if (entries > MaxEntries)
            {
                return null;
            }

            long width = 0, height = 0, tileWidth = 0, tileHeight = 0;
            int compression = 1, photometric = -1, samples = 1, bits = 1;
            TiffValues tileOffsets = default, tileByteCounts = default, jpegTables = default;
            for (long i = 0; i < entries; i++)
            {
                if (!TryRead(offset + countSize + (i * entrySize), entrySize))
                {
                    return null;
                }

                int tag = U16(_buffer), type = U16(_buffer.AsSpan(2));
                long count = big ? (long)Math.Min(U64(_buffer.AsSpan(4)), long.MaxValue) : U32(_buffer.AsSpan(4));
                ReadOnlySpan<byte> value = _buffer.AsSpan(big ? 12 : 8, offsetSize);
                switch (tag)
                {
                    case 256: width = Scalar(type, value); break;
                    case 257: height = Scalar(type, value); break;
                    case 259: compression = (int)Scalar(type, value); break;
                    case 262: photometric = (int)Scalar(type, value); break;
                    case 277: samples = (int)Scalar(type, value); break;
                    case 322: tileWidth = Scalar(type, value); break;
                    case 323: tileHeight = Scalar(type, value); break;
                    case 258: bits = FirstShort(type, count, value, offsetSize); break;
                    case 324: tileOffsets = Values(type, count, value, offset + countSize + (i * entrySize) + (big ? 12 : 8), offsetSize); break;
                    case 325: tileByteCounts = Values(type, count, value, offset + countSize + (i * entrySize) + (big ? 12 : 8), offsetSize); break;
                    case 347: jpegTables = Values(type, count, value, offset + countSize + (i * entrySize) + (big ? 12 : 8), offsetSize); break;
                    default: break;
                }
            }

            var directory = new TiffDirectory(width, height, tileWidth, tileHeight, compression, photometric, samples, bits)
            {
                LittleEndian = little, TileOffsets = tileOffsets, TileByteCounts = tileByteCounts, JpegTables = jpegTables,
            };
            if (!TryRead(offset + countSize + (entries * entrySize), offsetSize))
            {
                return (directory, 0);
            }

            long next = big ? (long)Math.Min(U64(_buffer), long.MaxValue) : U32(_buffer);
            return (directory, next);
        }

        /// <summary>A SHORT, LONG or LONG8 held in the entry itself (the tags read here have one value).</summary>
        private long Scalar(int type, ReadOnlySpan<byte> value) => type switch
        {
            3 => U16(value),
            4 => U32(value),
            16 => (long)Math.Min(U64(value), long.MaxValue),
            _ => -1,
        };

        /// <summary>Where a tag's values lie: in the entry (at <paramref name="entryValueAt"/>) when they fit there, else at the offset it holds.</summary>
        private TiffValues Values(int type, long count, ReadOnlySpan<byte> value, long entryValueAt, int offsetSize)
        {
            var values = new TiffValues(type, count, 0);
            if (values.ValueSize == 0 || count < 1 || count > file.Length)
            {
                return default;
            }

            long at = count * values.ValueSize <= offsetSize ? entryValueAt
                : offsetSize == 8 ? (long)Math.Min(U64(value), long.MaxValue) : U32(value);
            return at >= 0 && at <= file.Length - (count * values.ValueSize) ? values with { FileOffset = at } : default;
        }

        /// <summary>The first SHORT of a list that lies in the entry when it fits there, else at the offset it holds.</summary>
        private int FirstShort(int type, long count, ReadOnlySpan<byte> value, int offsetSize)
        {
            if (type != 3 || count < 1)
            {
                return -1;
            }

            if (count * 2 <= offsetSize)
            {
                return U16(value);
            }

            long at = offsetSize == 8 ? (long)Math.Min(U64(value), long.MaxValue) : U32(value);
            return TryRead(at, 2) ? U16(_buffer) : -1;
        }

        private bool TryRead(long at, int length)
        {
            if (at < 0 || at > file.Length - length)
            {
                return false;
            }

            file.Position = at;
            file.ReadExactly(_buffer, 0, length);
            return true;
        }
    }
}
