using System.Globalization;
using System.Text.Json;
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
