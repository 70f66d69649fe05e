using System.Buffers;
using Microsoft.Win32.SafeHandles;
using SlidePlugin.Engine.Interop;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Slides;

/// <summary>
/// The JPEG tiles of one TIFF level decoded by TurboJPEG straight from the file: a tile's bytes (TileOffsets,
/// TileByteCounts) after the level's JPEGTables, into the caller's buffer. libvips' TIFF loader gives each decoded tile a
/// fresh zeroed buffer, and on a whole-level read those page faults cost several times the decoding itself.
/// TurboJPEG decodes with libjpeg's defaults (accurate DCT, smooth upsampling), as libtiff does for OpenSlide; an RGB page
/// (Aperio's) gets an Adobe marker saying "no colour transform", which libtiff tells libjpeg directly and without which
/// the stream would be read as YCbCr. <see cref="TiffLevelReader"/> uses it only for levels whose pixels it has checked
/// equal to OpenSlide's. Thread-safe.
/// </summary>
internal sealed class TiffJpegTiles : IDisposable
{
    /// <summary>APP14 "Adobe", version 100, flags 0, 0, transform 0: the components are RGB as they are.</summary>
    private static readonly byte[] AdobeRgb = [0xFF, 0xEE, 0x00, 0x0E, (byte)'A', (byte)'d', (byte)'o', (byte)'b', (byte)'e', 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00];

    /// <summary>Largest tile accepted, a side (a TIFF tile is decoded whole into a buffer of its size).</summary>
    private const int MaxTileEdge = 4096;

    /// <summary>Tiles below which a region is decoded on the calling thread alone.</summary>
    private const int ParallelTiles = 8;

    /// <summary>Decoded tiles kept per level, in bytes: a grid whose tiles straddle TIFF tiles (256 px tiles over Aperio's 240)
    /// reads each TIFF tile up to four times; kept, its neighbours along a row of reads reuse it, as OpenSlide's and libvips'
    /// own tile caches did.</summary>
    private const int CacheBytes = 8 << 20;

    [ThreadStatic]
    private static TurboJpegDecompressor? t_decompressor;

    private readonly SafeFileHandle _file;
    private readonly long[] _offsets;
    private readonly int[] _counts;
    private readonly byte[] _prefix; // SOI, the Adobe marker for RGB pages, then the tables without their SOI and EOI
    private readonly int _tileWidth, _tileHeight, _columns;
    private readonly DecodedTile?[] _cache; // direct-mapped by tile index; an entry is never changed, only replaced

    private TiffJpegTiles(SafeFileHandle file, long[] offsets, int[] counts, byte[] prefix, int tileWidth, int tileHeight, int columns)
    {
        _cache = new DecodedTile?[Math.Max(4, CacheBytes / (tileWidth * tileHeight * 3))];
        _file = file;
        _offsets = offsets;
        _counts = counts;
        _prefix = prefix;
        _tileWidth = tileWidth;
        _tileHeight = tileHeight;
        _columns = columns;
    }

    /// <summary>The tiles of <paramref name="directory"/>, or null when it is not 8-bit RGB or YCbCr JPEG in tiles, or its tags do not add up.</summary>
    public static TiffJpegTiles? TryOpen(string path, TiffDirectory directory)
    {
        if (directory.Compression != 7 || !directory.Tiled || directory.SamplesPerPixel != 3 || directory.BitsPerSample != 8
            || directory.Photometric is not (2 or 6) || directory.TileWidth > MaxTileEdge || directory.TileHeight > MaxTileEdge)
        {
            return null;
        }

        int tileWidth = (int)directory.TileWidth, tileHeight = (int)directory.TileHeight;
        long columns = (directory.Width + tileWidth - 1) / tileWidth, rows = (directory.Height + tileHeight - 1) / tileHeight;
        if (directory.TileOffsets.Count != columns * rows || directory.TileByteCounts.Count != columns * rows)
        {
            return null;
        }

        SafeFileHandle file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        try
        {
            long[] offsets = TiffDirectories.ReadNumbers(file, directory.TileOffsets, directory.LittleEndian);
            long[] counts = TiffDirectories.ReadNumbers(file, directory.TileByteCounts, directory.LittleEndian);
            long length = RandomAccess.GetLength(file);
            for (int i = 0; i < offsets.Length; i++)
            {
                if (counts[i] < 4 || counts[i] > int.MaxValue / 2 || offsets[i] < 0 || offsets[i] > length - counts[i])
                {
                    file.Dispose();
                    return null;
                }
            }

            byte[] tables = [];
            if (directory.JpegTables.Count > 0)
            {
                tables = new byte[directory.JpegTables.Count];
                if (directory.JpegTables.ValueSize != 1 || RandomAccess.Read(file, tables, directory.JpegTables.FileOffset) != tables.Length
                    || tables.Length < 4 || tables[0] != 0xFF || tables[1] != 0xD8 || tables[^2] != 0xFF || tables[^1] != 0xD9)
                {
                    file.Dispose();
                    return null;
                }
            }

            byte[] prefix = [0xFF, 0xD8, .. directory.Photometric == 2 ? AdobeRgb : [], .. tables.Length > 0 ? tables.AsSpan(2, tables.Length - 4) : []];
            return new TiffJpegTiles(file, offsets, [.. counts.Select(c => (int)c)], prefix, tileWidth, tileHeight, (int)columns);
        }
        catch (IOException)
        {
            file.Dispose();
            return null;
        }
    }

    /// <summary>
    /// Decodes the level rectangle (<paramref name="left"/>, <paramref name="top"/>, <paramref name="width"/> x
    /// <paramref name="height"/>), which must lie inside the level, into <paramref name="rgb"/>; false when a tile cannot be
    /// read or decoded (the caller then reads the region another way).
    /// </summary>
    public bool TryRead(int left, int top, int width, int height, byte[] rgb)
    {
        int firstColumn = left / _tileWidth, lastColumn = (left + width - 1) / _tileWidth;
        int firstRow = top / _tileHeight, lastRow = (top + height - 1) / _tileHeight;
        int tileRows = lastRow - firstRow + 1;
        if (tileRows * (lastColumn - firstColumn + 1) < ParallelTiles || tileRows < 2)
        {
            return ReadRow(firstRow, lastRow);
        }

        bool read = true;
        Parallel.For(firstRow, lastRow + 1, EngineThreads.ParallelOptions, row =>
        {
            if (!ReadRow(row, row))
            {
                Volatile.Write(ref read, false);
            }
        });
        return read;

        bool ReadRow(int fromRow, int toRow)
        {
            for (int row = fromRow; row <= toRow; row++)
            {
                for (int column = firstColumn; column <= lastColumn; column++)
                {
                    // The part of this tile inside the region.
                    int x0 = Math.Max(left, column * _tileWidth), x1 = Math.Min(left + width, (column + 1) * _tileWidth);
                    int y0 = Math.Max(top, row * _tileHeight), y1 = Math.Min(top + height, (row + 1) * _tileHeight);
                    int at = (((y0 - top) * width) + (x0 - left)) * 3;
                    if (x1 - x0 == _tileWidth && y1 - y0 == _tileHeight)
                    {
                        // Wholly inside: decoded in place, no copy and nothing kept (no other read needs it soon).
                        if (!Decode((row * _columns) + column, rgb, at, width * 3))
                        {
                            return false;
                        }

                        continue;
                    }

                    if (Tile((row * _columns) + column) is not { } tile)
                    {
                        return false;
                    }

                    int bytes = (x1 - x0) * 3;
                    for (int y = y0; y < y1; y++)
                    {
                        tile.AsSpan((((y - (row * _tileHeight)) * _tileWidth) + (x0 - (column * _tileWidth))) * 3, bytes)
                            .CopyTo(rgb.AsSpan((((y - top) * width) + (x0 - left)) * 3, bytes));
                    }
                }
            }

            return true;
        }
    }

    /// <summary>Tile <paramref name="index"/> decoded (from the cache when it is there; shared: read it, never write it), or null when it cannot be.</summary>
    private byte[]? Tile(int index)
    {
        ref DecodedTile? slot = ref _cache[index % _cache.Length];
        if (Volatile.Read(ref slot) is { } cached && cached.Index == index)
        {
            return cached.Pixels;
        }

        var pixels = new byte[_tileWidth * _tileHeight * 3];
        if (!Decode(index, pixels, 0, _tileWidth * 3))
        {
            return null;
        }

        Volatile.Write(ref slot, new DecodedTile(index, pixels));
        return pixels;
    }

    private sealed record DecodedTile(int Index, byte[] Pixels);

    /// <summary>Decodes tile <paramref name="index"/> whole into <paramref name="destination"/> from byte <paramref name="offset"/>, rows <paramref name="pitch"/> bytes apart.</summary>
    private unsafe bool Decode(int index, byte[] destination, int offset, int pitch)
    {
        if (offset < 0 || (long)offset + ((long)(_tileHeight - 1) * pitch) + (_tileWidth * 3L) > destination.Length)
        {
            return false;
        }

        int count = _counts[index];
        byte[] stream = ArrayPool<byte>.Shared.Rent(_prefix.Length + count - 2);
        try
        {
            // The tile's own SOI is dropped: the prefix starts the stream, with the tables before the tile's frame.
            Span<byte> data = stream.AsSpan(_prefix.Length - 2, count);
            if (!TryReadAt(data, _offsets[index]) || data[0] != 0xFF || data[1] != 0xD8)
            {
                return false;
            }

            _prefix.CopyTo(stream, 0);
            TurboJpegDecompressor decompressor = t_decompressor ??= new TurboJpegDecompressor();
            fixed (byte* jpeg = stream)
            fixed (byte* pixels = destination)
            {
                nuint size = (nuint)(_prefix.Length + count - 2);
                return TurboJpegNative.DecompressHeader3(decompressor, jpeg, size, out int width, out int height, out _, out _) == 0
                    && width == _tileWidth && height == _tileHeight
                    && TurboJpegNative.Decompress2(decompressor, jpeg, size, pixels + offset, _tileWidth, pitch, _tileHeight, TurboJpegNative.PixelFormatRgb, 0) == 0;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(stream);
        }
    }

    /// <summary>Reads the tile's bytes; false when the file has changed under us (shorter, gone): the caller reads another way.</summary>
    private bool TryReadAt(Span<byte> data, long offset)
    {
        try
        {
            return RandomAccess.Read(_file, data, offset) == data.Length;
        }
        catch (IOException)
        {
            return false;
        }
    }

    public void Dispose() => _file.Dispose();
}
