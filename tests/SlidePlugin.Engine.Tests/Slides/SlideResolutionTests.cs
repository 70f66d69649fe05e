using SlidePlugin.Engine.Slides;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Slides;

public class SlideResolutionTests
{
    private static Dictionary<string, string> Props(params (string Key, string Value)[] entries) =>
        entries.ToDictionary(e => e.Key, e => e.Value);

    [Fact]
    public void Resolve_OverrideGiven_WinsOverMetadata()
    {
        SlideResolution r = SlideResolution.Resolve(Props(("openslide.mpp-x", "0.499")), overrideMpp: 0.25);

        Assert.Equal((0.25, 0.25, MppSource.Override), (r.MppX, r.MppY, r.Source));
    }

    [Fact]
    public void Resolve_OpenSlideMpp_UsedWithBothAxes()
    {
        SlideResolution r = SlideResolution.Resolve(Props(("openslide.mpp-x", "0.2527"), ("openslide.mpp-y", "0.2531"),
            ("tiff.ResolutionUnit", "centimeter"), ("tiff.XResolution", "40000"), ("openslide.objective-power", "40")));

        Assert.Equal((0.2527, 0.2531, MppSource.OpenSlide), (r.MppX, r.MppY, r.Source));
    }

    [Theory]
    [InlineData("centimeter", "40000", 0.25)]   // 40,000 px/cm
    [InlineData("inch", "101600", 0.25)]        // 101,600 dpi
    public void Resolve_TiffTagsWithPhysicalUnit_Converted(string unit, string resolution, double expected)
    {
        SlideResolution r = SlideResolution.Resolve(Props(("tiff.ResolutionUnit", unit), ("tiff.XResolution", resolution), ("tiff.YResolution", resolution)));

        Assert.Equal(MppSource.TiffResolution, r.Source);
        Assert.Equal(expected, r.MppX!.Value, 1e-9);
    }

    [Fact]
    public void Resolve_TiffTagsWithoutUnit_Ignored()
    {
        SlideResolution r = SlideResolution.Resolve(Props(("tiff.ResolutionUnit", "none"), ("tiff.XResolution", "40000")));

        Assert.Equal(MppSource.None, r.Source);
    }

    [Fact]
    public void Resolve_SeventyTwoDpiDefault_IgnoredAndSaysSo()
    {
        // boxes.tiff's tags: 28.35 px/cm = 72 dpi = 352.8 µm/px, a software default.
        SlideResolution r = SlideResolution.Resolve(Props(("tiff.ResolutionUnit", "centimeter"), ("tiff.XResolution", "28.346456527709961")));

        Assert.Equal(MppSource.None, r.Source);
        Assert.Null(r.MppX);
        Assert.Contains("352.78", r.Explanation, StringComparison.Ordinal);
        Assert.Contains("ignored", r.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Resolve_ObjectivePowerOnly_AssumptionStated()
    {
        SlideResolution r = SlideResolution.Resolve(Props(("openslide.objective-power", "40")));

        Assert.Equal((0.25, MppSource.ObjectivePower), (r.MppX, r.Source));
        Assert.Contains("assumed", r.Explanation, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-0.5)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(1e-9)]   // DetectTissue with it answered INTERNAL
    [InlineData(5000)]
    public void Resolve_BadOverride_InvalidRequest(double value)
    {
        var error = Assert.Throws<SlideException>(() => SlideResolution.Resolve(Props(), value));

        Assert.Equal(SlideErrorKind.InvalidRequest, error.Kind);
    }

    [Fact]
    public void RequireMppX_Unknown_MessageSaysHowToPassAnOverride()
    {
        SlideResolution r = SlideResolution.Resolve(Props());

        var error = Assert.Throws<SlideException>(() => r.RequireMppX("boxes.tiff"));

        Assert.Contains("--mpp", error.Message, StringComparison.Ordinal);
        Assert.Contains("mpp_override", error.Message, StringComparison.Ordinal);
        Assert.Contains("boxes.tiff", error.Message, StringComparison.Ordinal);
        // No value offered as the likely answer: a user copies it, and every tile is scaled wrongly without a word.
        Assert.DoesNotContain("e.g.", error.Message, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"--mpp \d", error.Message);
        Assert.Contains("scanner's report", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("CMU-1-Small-Region.svs", MppSource.OpenSlide, 0.499)]
    [InlineData("small.svs", MppSource.OpenSlide, 0.499)]
    [InlineData("boxes.tiff", MppSource.None, null)]
    public void Of_RealSlide_ResolutionAndGeometry(string file, MppSource source, double? mpp)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", file));

        SlideInfo info = SlideInfo.Of(slide);

        Assert.Equal(source, info.Resolution.Source);
        Assert.Equal(mpp, info.Resolution.MppX);
        Assert.Equal(slide.Dimensions, (info.Width, info.Height));
        Assert.Equal(slide.LevelCount, info.Levels.Count);
        Assert.Equal(slide.Properties["openslide.quickhash-1"], info.QuickHash);
        Assert.Equal("FFFFFF", info.BackgroundColor);
    }

    [Fact]
    public void Of_CmuSlide_ObjectivePowerTwenty()
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));

        Assert.Equal(20, SlideInfo.Of(slide).ObjectivePower);
    }
}
