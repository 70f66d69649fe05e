using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Encoders;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Datasets;

/// <summary>Bags of features from a slide list: one features file per slide, named by its stem.</summary>
public sealed class FeatureBagsTests : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-feature-bags").FullName;

    public Task InitializeAsync() => TestEncoders.ExportSmallAsync(Path.Combine(_folder, "small"));

    public Task DisposeAsync()
    {
        Directory.Delete(_folder, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public void Create_TwoDifferentSlidesOfOneName_RefusedBeforeAnyFeatureIsWritten()
    {
        foreach (string sub in new[] { "a", "b" })
        {
            Directory.CreateDirectory(Path.Combine(_folder, sub));
        }

        File.CreateSymbolicLink(Path.Combine(_folder, "a", "slide.svs"), TestData.Path("slides", "CMU-1-Small-Region.svs"));
        File.CreateSymbolicLink(Path.Combine(_folder, "b", "slide.svs"), SyntheticSlides.Generate(3072, 3072, [new Level0Rect(512, 512, 2048, 2048)]));
        string csv = Path.Combine(_folder, "slides.csv");
        File.WriteAllLines(csv, ["slide,label", "a/slide.svs,0", "b/slide.svs,1"]);
        using TileEncoder encoder = TileEncoder.Load(Path.Combine(_folder, "small.onnx"));

        var error = Assert.Throws<DatasetException>(() => new FeatureBags(csv, encoder, Path.Combine(_folder, "features")));

        Assert.Contains("lists different slides named 'slide'", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_folder, "features")));
    }
}
