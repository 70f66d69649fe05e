using System.Buffers.Binary;
using SlidePlugin.Engine.Slides;

namespace SlidePlugin.Engine.Tests.Slides;

/// <summary>TIFF tags that do not add up, and tiles that are not JPEG: the decoder is not used, or the read reports failure (the caller then reads another way).</summary>
public sealed class TiffJpegTilesTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"slideplugin-jpegtiles-{Guid.NewGuid():N}.bin");

    public void Dispose() => File.Delete(_path);

    /// <summary>A file holding one LONG tile offset at 0, one LONG byte count at 4, then <paramref name="tail"/>.</summary>
    private TiffDirectory OneTile(uint offset, uint count, byte[] tail)
    {
        var bytes = new byte[8 + tail.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, offset);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), count);
        tail.CopyTo(bytes, 8);
        File.WriteAllBytes(_path, bytes);
        return new TiffDirectory(16, 16, 16, 16, Compression: 7, Photometric: 6, SamplesPerPixel: 3, BitsPerSample: 8)
        {
            LittleEndian = true,
            TileOffsets = new TiffValues(4, 1, 0),
            TileByteCounts = new TiffValues(4, 1, 4),
        };
    }

    [Fact]
    public void TryOpen_TileBytesPastTheEndOfTheFile_NotUsed()
    {
        TiffDirectory directory = OneTile(offset: 8, count: 400, tail: new byte[40]);

        Assert.Null(TiffJpegTiles.TryOpen(_path, directory));
    }

    [Theory]
    [InlineData(1)]   // not JPEG compression
    [InlineData(-2)]  // a tile count that does not match the grid
    public void TryOpen_TagsThatDoNotAddUp_NotUsed(int variant)
    {
        TiffDirectory directory = OneTile(offset: 8, count: 40, tail: new byte[40]);
        directory = variant == 1 ? directory with { Compression = 1 } : directory with { Width = 40 };

        Assert.Null(TiffJpegTiles.TryOpen(_path, directory));
    }

    [Theory]
    [InlineData(false)] // no SOI
    [InlineData(true)]  // an SOI, then garbage
    public void TryRead_TileThatIsNotJpeg_FalseAndNothingThrown(bool startsLikeJpeg)
    {
        byte[] tail = [.. Enumerable.Range(0, 40).Select(i => (byte)(i * 37))];
        if (startsLikeJpeg)
        {
            (tail[0], tail[1]) = (0xFF, 0xD8);
        }

        using TiffJpegTiles tiles = TiffJpegTiles.TryOpen(_path, OneTile(offset: 8, count: 40, tail: tail))!;

        Assert.False(tiles.TryRead(0, 0, 16, 16, new byte[16 * 16 * 3]));
    }
}
