using SlidePlugin.Engine.Analysis;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Encoders;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Analysis;

/// <summary>
/// A slide analysed CLAM's way: tiles -> tile encoder (ONNX) -> gated A-MIL, CLAM-SB or CLAM-MB head on features, streamed
/// and stored as patch models are, pooled batch by batch; against the head run once on the slide's whole bag of features
/// from <c>features</c>.
/// </summary>
public sealed class EncoderAnalysisTests : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-encoder-analysis").FullName;
    private string _encoderPath = "";
    private string _headPath = "";

    public async Task InitializeAsync()
    {
        _encoderPath = Path.Combine(_folder, "small.onnx");
        await TestEncoders.ExportSmallAsync(Path.ChangeExtension(_encoderPath, null));
        _headPath = Path.Combine(_folder, "head.safetensors");
        TestEncoders.SaveFeatureHead(_headPath, seed: 11, name: "head-on-small");
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_folder, recursive: true);
        return Task.CompletedTask;
    }

    [Theory]
    [InlineData(MilVariant.Ilse, 2)]
    [InlineData(MilVariant.ClamSb, 2)]
    [InlineData(MilVariant.ClamMb, 3)]      // one attention branch per class: tiles get the predicted class's
    public async Task AnalyzeAsync_HeadOnEncoderFeatures_EqualsTheHeadOnTheWholeBagOfExtractedFeatures(MilVariant variant, int classes)
    {
        string headPath = _headPath;
        if (variant != MilVariant.Ilse)
        {
            headPath = Path.Combine(_folder, $"{variant}.safetensors");
            TestEncoders.SaveFeatureHead(headPath, seed: 12, name: $"{variant}-on-small", variant, classes);
        }

        using TileEncoder encoder = TileEncoder.Load(_encoderPath);
        AnalysisModel model = AnalysisModel.Load(headPath, encoder);
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        double mpp = slide.RequireMpp();
        var analyzer = new SlideAnalyzer(new AnalysisStore(Path.Combine(_folder, $"analyses-{variant}.sqlite")), model);

        AnalysisResult result = await analyzer.AnalyzeAsync(slide, mpp, new AnalysisOptions { BatchSize = 64 });
        (string features, _) = await FeatureExtractor.ExtractAsync(slide, mpp, encoder, new FeatureOptions(), Path.Combine(_folder, "features"));
        SafeTensorsFile file = SafeTensors.Load(features);
        using Tensor bag = file.ToTensor("features");                                      // [N, 128]
        MilOutput whole;
        using (GradMode.NoGrad())
        {
            whole = model.Network.Forward(bag);
        }

        using (whole)
        {
            Assert.Equal(96, result.Header.TileSize);
            Assert.Equal(0.5, result.Header.TargetMpp);
            Assert.Equal(bag.Shape[0], result.Header.TileCount);
            Assert.Equal(whole.Probabilities.Data.ToArray(), result.Probabilities, (a, b) => Math.Abs(a - b) <= 1e-5);
            float[] attention = whole.Attention.Data.ToArray(), scores = whole.AttentionScores.Data.ToArray();
            Assert.All(result.Tiles, t => Assert.True(Math.Abs(attention[t.Index] - t.Attention) <= 1e-5 * (1 + attention[t.Index]),
                $"tile {t.Index}: {t.Attention} vs {attention[t.Index]}"));
            Assert.All(result.Tiles, t => Assert.Equal(scores[t.Index], t.Score, 1e-4));
        }

        Assert.NotEqual(analyzer.KeyOf(slide, mpp, new AnalysisOptions()),
            new SlideAnalyzer(new AnalysisStore(Path.Combine(_folder, "other.sqlite")), AnalysisModel.Load(Path.Combine(TestData.RepositoryRoot, "models", "default", "ucsb-gated-amil.safetensors"))).KeyOf(slide, mpp, new AnalysisOptions()));
    }

    [Fact]
    public async Task Load_HeadAndEncoderOfOtherSizes_ErrorNamingBoth()
    {
        using TileEncoder encoder = TileEncoder.Load(_encoderPath);
        var spec = new AttentionMilSpec { Input = MilInput.Features, FeatureSize = 1024 };
        string head = Path.Combine(_folder, "head-1024.safetensors");
        ModelCheckpoint.Save(head, new AttentionMil(spec, new TensorRandom(1)), new ModelCard { Name = "uni-head", Spec = spec, Classes = ["a", "b"] });
        await Task.CompletedTask;

        var error = Assert.Throws<InvalidDataException>(() => AnalysisModel.Load(head, encoder));

        Assert.Contains("takes 1024-d features, but the encoder 'small-seed0' gives 128", error.Message, StringComparison.Ordinal);
    }
}
