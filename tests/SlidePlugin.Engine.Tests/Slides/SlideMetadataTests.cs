using System.Globalization;
using System.Text.Json;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Slides;

/// <summary>Slide metadata compared with what openslide-python reports for the same file.</summary>
public class SlideMetadataTests
{
    [Theory]
    [InlineData("CMU-1-Small-Region.svs")]
    [InlineData("small.svs")]
    [InlineData("boxes.tiff")]
    [InlineData("unreadable.svs")]
    public async Task Open_RealSlide_MetadataEqualsOpenSlidePython(string file)
    {
        string path = TestData.Path("slides", file);
        using JsonDocument reference = JsonDocument.Parse(await ExternalProcess.RunReferenceScriptAsync("openslide_metadata.py", path));
        JsonElement expected = reference.RootElement;

        using Slide slide = Slide.Open(path);

        Assert.Equal(expected.GetProperty("vendor").GetString(), Slide.DetectFormat(path));
        Assert.Equal(expected.GetProperty("vendor").GetString(), slide.Vendor);
        Assert.Equal(expected.GetProperty("level_count").GetInt32(), slide.LevelCount);
        Assert.Equal(
            expected.GetProperty("level_dimensions").EnumerateArray().Select(d => (d[0].GetInt64(), d[1].GetInt64())),
            slide.LevelDimensions);
        Assert.Equal(
            expected.GetProperty("level_downsamples").EnumerateArray().Select(d => d.GetDouble()),
            slide.LevelDownsamples);
        Assert.Equal(
            expected.GetProperty("properties").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!),
            slide.Properties);
        Assert.Equal(
            expected.GetProperty("associated_images").EnumerateObject()
                .ToDictionary(p => p.Name, p => (p.Value[0].GetInt64(), p.Value[1].GetInt64())),
            slide.AssociatedImageDimensions);
        foreach (JsonProperty best in expected.GetProperty("best_level_for_downsample").EnumerateObject())
        {
            double downsample = double.Parse(best.Name, CultureInfo.InvariantCulture);
            Assert.Equal(best.Value.GetInt32(), slide.GetBestLevelForDownsample(downsample));
        }
    }

    [Theory]
    [InlineData("unopenable.tiff", "Unsupported TIFF compression: 52479")]
    [InlineData("broken.svs", "Unsupported or missing image file")]
    public async Task Open_UnopenableFile_ThrowsUnsupportedWithOpenSlidesReason(string file, string reason)
    {
        string path = TestData.Path("slides", file);
        using JsonDocument reference = JsonDocument.Parse(await ExternalProcess.RunReferenceScriptAsync("openslide_metadata.py", path));
        Assert.Equal(reason, reference.RootElement.GetProperty("error").GetString());

        var error = Assert.Throws<SlideException>(() => Slide.Open(path));

        Assert.Equal(SlideErrorKind.Unsupported, error.Kind);
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        Assert.Contains(file, error.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> UnopenableKinds => new()
    {
        { "strips.tif", "It is a TIFF stored in strips, not tiles: OpenSlide reads tiled TIFF only. Convert it with vips tiffsave INPUT OUTPUT.tiff --tile --pyramid" },
        { "scan.dcm", "It is a DICOM file: DICOM whole-slide images need OpenSlide 4" },
        { "photo.png", "It is a plain PNG image, not a whole-slide image." },
        { "photo.jpg", "It is a plain JPEG image, not a whole-slide image." },
    };

    [Theory]
    [MemberData(nameof(UnopenableKinds))]
    public async Task Open_FileOpenSlide34CannotOpen_SaysWhatItIsAndTheWayOut(string file, string hint)
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-unopenable").FullName;
        try
        {
            string path = System.IO.Path.Combine(folder, file);
            var image = new Raster(64, 48, 3, [.. Enumerable.Range(0, 64 * 48 * 3).Select(i => (byte)(i * 7))]);
            switch (System.IO.Path.GetExtension(file))
            {
                case ".png": await File.WriteAllBytesAsync(path, ImageCodec.EncodePng(image)); break;
                case ".jpg": await File.WriteAllBytesAsync(path, ImageCodec.EncodeJpeg(image)); break;
                case ".dcm": await File.WriteAllBytesAsync(path, [.. new byte[128], .. "DICM"u8.ToArray(), 0x02, 0x00, 0x00, 0x00, 0x55, 0x4C, 0x04, 0x00, 0, 0, 0, 0]); break;
                default:
                    // A TIFF as most tools write one by default: RGB in strips.
                    await ExternalProcess.RunReferenceScriptAsync("make_tiff_slide.py", path, "--compression", "none", "--format", "generic", "--strips", "--levels", "1");
                    break;
            }

            var error = Assert.Throws<SlideException>(() => Slide.Open(path));

            Assert.Equal(SlideErrorKind.Unsupported, error.Kind);
            Assert.Contains($"OpenSlide cannot open '{path}': ", error.Message, StringComparison.Ordinal);
            Assert.Contains(hint, error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Open_MissingFile_ThrowsNotFound()
    {
        string path = System.IO.Path.Combine(TestData.Root, "slides", "no-such-slide.svs");

        var error = Assert.Throws<SlideException>(() => Slide.Open(path));

        Assert.Equal(SlideErrorKind.NotFound, error.Kind);
        Assert.Contains("no-such-slide.svs", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dispose_ThenQuery_ThrowsObjectDisposed()
    {
        Slide slide = Slide.Open(TestData.Path("slides", "small.svs"));
        slide.Dispose();

        Assert.Throws<ObjectDisposedException>(() => slide.GetBestLevelForDownsample(2));
    }
}
