using System.Text.Json;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Imaging;

/// <summary>libvips decoding, encoding and resizing compared with Pillow on real images.</summary>
public sealed class ImageCodecTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-codec").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private async Task<Raster> PillowAsync(params string[] arguments)
    {
        string raw = Path.Combine(_folder, $"{Guid.NewGuid():N}.raw");
        using JsonDocument info = JsonDocument.Parse(await ExternalProcess.RunReferenceScriptAsync("pil_images.py", [.. arguments, raw]));
        JsonElement root = info.RootElement;
        return new Raster(root.GetProperty("width").GetInt32(), root.GetProperty("height").GetInt32(), root.GetProperty("bands").GetInt32(), File.ReadAllBytes(raw));
    }

    private static double MeanAbsoluteDifference(Raster a, Raster b)
    {
        Assert.Equal((a.Width, a.Height, a.Bands), (b.Width, b.Height, b.Bands));
        long sum = 0;
        for (int i = 0; i < a.Pixels.Length; i++)
        {
            sum += Math.Abs(a.Pixels[i] - b.Pixels[i]);
        }

        return (double)sum / a.Pixels.Length;
    }

    [Theory]
    [InlineData("tiles", "tissue-level0-4302-10273-4814-10785.png")]
    [InlineData("tiles", "no-tissue-red-pen.png")]
    [InlineData("tiles", "almost-white-1.png")]
    [InlineData("breakhis", "SOB_M_DC-14-2523-40-010.png")]
    [InlineData("ucsb-breast", "ytma10_010704_benign1_ccd.tif")]
    public async Task Decode_PngAndTiff_PixelsIdenticalToPillow(string folder, string file)
    {
        string path = TestData.Path(folder, file);
        Raster expected = await PillowAsync("decode", path);

        Raster decoded = ImageCodec.Decode(File.ReadAllBytes(path));

        Assert.Equal((expected.Width, expected.Height, expected.Bands), (decoded.Width, decoded.Height, decoded.Bands));
        Assert.Equal(expected.Pixels, decoded.Pixels);
    }

    [Fact]
    public async Task Decode_JpegWrittenByPillow_MatchesPillowWithinOneLevel()
    {
        string jpeg = Path.Combine(_folder, "tile.jpg");
        await ExternalProcess.RunReferenceScriptAsync("pil_images.py", "jpeg", TestData.Path("tiles", "tissue-level0-4302-10273-4814-10785.png"), "85", jpeg);
        Raster expected = await PillowAsync("decode", jpeg);

        Raster decoded = ImageCodec.Decode(File.ReadAllBytes(jpeg));

        // Both use libjpeg-turbo; IDCT and upsampling choices may differ by one level on a few pixels.
        Assert.True(MeanAbsoluteDifference(expected, decoded) < 0.5, "mean difference >= 0.5 levels");
        Assert.All(expected.Pixels.Zip(decoded.Pixels), p => Assert.InRange(Math.Abs(p.First - p.Second), 0, 3));
    }

    [Fact]
    public void EncodePng_ThenDecode_LosslessRoundTrip()
    {
        Raster original = ImageCodec.Decode(File.ReadAllBytes(TestData.Path("tiles", "no-tissue-red-pen.png")));

        Raster again = ImageCodec.Decode(ImageCodec.EncodePng(original));

        Assert.Equal(original.Pixels, again.Pixels);
    }

    [Fact]
    public async Task EncodeJpeg_Quality90_PillowDecodesItCloseToTheOriginal()
    {
        Raster original = ImageCodec.Decode(File.ReadAllBytes(TestData.Path("tiles", "tissue-level0-4302-10273-4814-10785.png")));
        Raster rgb = new(original.Width, original.Height, 3, original.Pixels.Where((_, i) => i % original.Bands < 3).ToArray());
        string jpeg = Path.Combine(_folder, "ours.jpg");

        byte[] encoded = ImageCodec.EncodeJpeg(original, quality: 90);
        await File.WriteAllBytesAsync(jpeg, encoded);
        Raster decodedByPillow = await PillowAsync("decode", jpeg);

        Assert.Equal([0xFF, 0xD8], encoded[..2]);
        Assert.True(MeanAbsoluteDifference(rgb, decodedByPillow) < 3.0, "quality 90 should stay within 3 levels on average");
    }

    [Theory]
    [InlineData("tissue-level0-4302-10273-4814-10785.png", 90)]
    [InlineData("no-tissue-red-pen.png", 75)]
    public async Task EncodeJpeg_SameQualityAsPillow_SameCodedImage(string tile, int quality)
    {
        // Both are libjpeg-turbo with 4:2:0 chroma and standard tables: the scans must decode to the same pixels.
        string path = TestData.Path("tiles", tile);
        string pillowJpeg = Path.Combine(_folder, "pillow.jpg");
        await ExternalProcess.RunReferenceScriptAsync("pil_images.py", "jpeg", path, $"{quality}", pillowJpeg);
        Raster original = ImageCodec.Decode(File.ReadAllBytes(path));

        byte[] ours = ImageCodec.EncodeJpeg(original, quality);

        Assert.Equal(ImageCodec.Decode(File.ReadAllBytes(pillowJpeg)).Pixels, ImageCodec.Decode(ours).Pixels);
    }

    [Fact]
    public void EncodeJpeg_Grey_StaysOneBand()
    {
        var grey = new Raster(64, 32, 1, Enumerable.Range(0, 64 * 32).Select(i => (byte)(i % 251)).ToArray());

        Raster decoded = ImageCodec.Decode(ImageCodec.EncodeJpeg(grey, 95));

        Assert.Equal((64, 32, 1), (decoded.Width, decoded.Height, decoded.Bands));
        Assert.True(MeanAbsoluteDifference(grey, decoded) < 3.0);
    }

    [Fact]
    public async Task Resize_HalfSizeLanczos_CloseToPillowLanczos()
    {
        string path = TestData.Path("breakhis", "SOB_B_F-14-25197-40-023.png");
        Raster expected = await PillowAsync("resize", path, "350", "230");
        Raster original = ImageCodec.Decode(File.ReadAllBytes(path));

        Raster resized = ImageCodec.Resize(original, 350, 230);

        Assert.Equal((350, 230, original.Bands), (resized.Width, resized.Height, resized.Bands));
        // Two Lanczos-3 implementations: not the same bytes, but the same picture.
        Assert.True(MeanAbsoluteDifference(expected, resized) < 2.0, "mean difference to Pillow's Lanczos >= 2 levels");
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3, 4, 5 })]
    [InlineData(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0 })] // a PNG signature and nothing else
    public void Decode_NotAnImage_ImageCodecExceptionWithReason(byte[] bytes)
    {
        var error = Assert.Throws<ImageCodecException>(() => ImageCodec.Decode(bytes));

        Assert.StartsWith("Cannot decode the image: ", error.Message, StringComparison.Ordinal);
        Assert.True(error.Message.Length > "Cannot decode the image: ".Length);
        // ... and the codec still works afterwards.
        Assert.Equal(1, ImageCodec.Decode(ImageCodec.EncodePng(new Raster(1, 1, 3, [1, 2, 3]))).Width);
    }

    [Fact]
    public void Decode_TruncatedPng_ImageCodecException()
    {
        byte[] png = File.ReadAllBytes(TestData.Path("tiles", "no-tissue.png"));

        Assert.Throws<ImageCodecException>(() => ImageCodec.Decode(png.AsSpan(0, png.Length / 2)));
    }

    [Fact]
    public void Decode_Empty_ImageCodecException()
    {
        Assert.Throws<ImageCodecException>(() => ImageCodec.Decode([]));
    }
}
