using System.Text.Json;
using SlidePlugin.Engine.Analysis;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Engine.Tissue;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Analysis;

/// <summary>
/// The analysis pipeline on CMU-1-Small-Region.svs with a seeded gated model of 32 px patches at 0.5 µm/px. The reference
/// for the batch-by-batch result is the model's plain forward pass over the whole bag of the same tiles.
/// </summary>
public sealed class SlideAnalyzerTests : IDisposable
{
    private const double CmuMpp = 0.499;
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-analysis").FullName;
    private readonly AnalysisModel _model;
    private readonly Slide _slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));

    public SlideAnalyzerTests()
    {
        var spec = new AttentionMilSpec { Attention = MilAttention.Gated, PatchSize = 32, Channels = 3 };
        string weights = Path.Combine(_folder, "model.safetensors");
        ModelCheckpoint.Save(weights, new AttentionMil(spec, new TensorRandom(5)), new ModelCard
        {
            Name = "test-gated",
            Spec = spec,
            Classes = ["benign", "malignant"],
            Mpp = 0.5,
            InputMean = [0.5f],
            InputStd = [0.5f],
        });
        _model = AnalysisModel.Load(weights);
    }

    public void Dispose()
    {
        _slide.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    private SlideAnalyzer NewAnalyzer(string store) => new(new AnalysisStore(Path.Combine(_folder, store)), _model);

    [Fact]
    public async Task AnalyzeAsync_Cmu_TilesAreTheTissueGridAndPredictionEqualsTheWholeBagForward()
    {
        var events = new List<AnalysisEvent>();
        AnalysisResult result = await NewAnalyzer("a.sqlite").AnalyzeAsync(_slide, CmuMpp, new AnalysisOptions { BatchSize = 500 }, events.Add);

        TileGrid grid = TileGrid.Build(_slide, CmuMpp, new TileGridOptions { TileSize = 32, TargetMpp = 0.5, MinTissueFraction = 0.5 }, TissueDetector.Detect(_slide, CmuMpp));
        Assert.Equal(grid.Tiles.Count, result.Tiles.Count);
        Assert.Equal(grid.Tiles.Select(t => (t.X, t.Y)), result.Tiles.Select(t => (t.X, t.Y)));
        Assert.Equal(grid.Tiles.Count, events.OfType<AnalysisEvent.Scored>().Sum(e => e.Tiles.Count));
        Assert.IsType<AnalysisEvent.Started>(events[0]);
        Assert.IsType<AnalysisEvent.Completed>(events[^1]);
        Assert.Equal(1.0, result.Tiles.Sum(t => t.Attention), 9);

        // Reference: the same tiles as one bag through Forward (softmax and pooling in float32 in one pass).
        byte[] pixels = [.. grid.Tiles.SelectMany(t => grid.Read(_slide, t).Pixels)];
        using (GradMode.NoGrad())
        {
            using Tensor bag = new PatchBag(pixels, grid.Tiles.Count, 32, 3).ToTensor(PatchNormalization.Centered);
            using MilOutput expected = _model.Network.Forward(bag);
            Assert.Equal(expected.Probabilities.Data[1], result.Probabilities[1], 5);
            for (int i = 0; i < result.Tiles.Count; i++)
            {
                Assert.Equal(expected.AttentionScores.Data[i], result.Tiles[i].Score, 4);
                Assert.Equal(expected.Attention.Data[i], result.Tiles[i].Attention, 6);
            }
        }
    }

    [Fact]
    public async Task AnalyzeAsync_SameAnalysisTwice_SecondAnsweredFromTheStoreWithIdenticalNumbers()
    {
        SlideAnalyzer analyzer = NewAnalyzer("twice.sqlite");
        AnalysisResult first = await analyzer.AnalyzeAsync(_slide, CmuMpp, new AnalysisOptions());
        var events = new List<AnalysisEvent>();

        AnalysisResult second = await analyzer.AnalyzeAsync(_slide, CmuMpp, new AnalysisOptions(), events.Add);

        Assert.False(first.FromStore);
        Assert.True(second.FromStore);
        Assert.Empty(events.OfType<AnalysisEvent.Scored>());
        Assert.Equal(first.Probabilities, second.Probabilities);
        Assert.Equal(first.Tiles.Select(t => (t.Score, t.Attention, t.Percentile)), second.Tiles.Select(t => (t.Score, t.Attention, t.Percentile)));
    }

    [Fact]
    public async Task AnalyzeAsync_CancelledAfterTwoBatchesThenResumed_SameResultAsUninterrupted()
    {
        AnalysisResult uninterrupted = await NewAnalyzer("straight.sqlite").AnalyzeAsync(_slide, CmuMpp, new AnalysisOptions { BatchSize = 300 });
        SlideAnalyzer analyzer = NewAnalyzer("resumed.sqlite");
        using var cancel = new CancellationTokenSource();
        int batches = 0, reported = 0;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => analyzer.AnalyzeAsync(_slide, CmuMpp, new AnalysisOptions { BatchSize = 300 }, e =>
        {
            if (e is AnalysisEvent.Scored scored)
            {
                reported += scored.Tiles.Count;
                if (++batches == 2)
                {
                    cancel.Cancel();
                }
            }
        }, cancel.Token));
        var events = new List<AnalysisEvent>();
        AnalysisResult resumed = await analyzer.AnalyzeAsync(_slide, CmuMpp, new AnalysisOptions { BatchSize = 300 }, events.Add);

        // What the stopped run reported is exactly what the store kept (the batch the model had finished is committed
        // and reported too), and the resumed run scores only the rest.
        Assert.InRange(reported, 600, 900);
        Assert.Equal(reported, events.OfType<AnalysisEvent.Started>().Single().Header.TilesAlreadyScored);
        Assert.Equal(uninterrupted.Tiles.Count - reported, events.OfType<AnalysisEvent.Scored>().Sum(e => e.Tiles.Count));
        // Bit for bit under any BLAS kernel: every tile is scored in the batch the uninterrupted run put it in.
        Assert.Equal(uninterrupted.Probabilities, resumed.Probabilities);
        Assert.Equal(uninterrupted.Tiles.Select(t => (t.Score, t.Attention, t.Percentile)), resumed.Tiles.Select(t => (t.Score, t.Attention, t.Percentile)));
    }

    [Fact]
    public void Percentiles_Ties_AsScipyPercentileOfScoreRank()
    {
        // scipy.stats.percentileofscore([1, 2, 2, 3], s, kind="rank") for s = 1, 2, 3: 25, 62.5, 100.
        Assert.Equal([25, 62.5, 62.5, 100], SlideAnalyzer.Percentiles([1f, 2f, 2f, 3f]));
        Assert.Equal([100.0 / 3, 100, 200.0 / 3], SlideAnalyzer.Percentiles([-5f, 7f, 0f]));
    }

    [Fact]
    public async Task Exports_Cmu_GeoJsonFollowsQuPathRulesCsvHasEveryTileAndHeatmapHasTheThumbnailSize()
    {
        AnalysisResult result = await NewAnalyzer("exports.sqlite").AnalyzeAsync(_slide, CmuMpp, new AnalysisOptions());
        IReadOnlyList<string> files = AnalysisFiles.Write(result, _slide, Path.Combine(_folder, "out"));

        using JsonDocument geojson = JsonDocument.Parse(File.ReadAllText(files.Single(f => f.EndsWith(".geojson", StringComparison.Ordinal))));
        JsonElement[] features = [.. geojson.RootElement.GetProperty("features").EnumerateArray()];
        Assert.Equal("FeatureCollection", geojson.RootElement.GetProperty("type").GetString());
        Assert.Equal(result.Tiles.Count, features.Length);
        foreach (JsonElement feature in features)
        {
            JsonElement properties = feature.GetProperty("properties");
            Assert.Equal("tile", properties.GetProperty("objectType").GetString());
            Assert.False(feature.TryGetProperty("objectType", out _));
            Assert.Equal(3, properties.GetProperty("classification").GetProperty("color").GetArrayLength());
            Assert.Contains(properties.GetProperty("classification").GetProperty("name").GetString(), result.Header.Classes);
            JsonElement measurements = properties.GetProperty("measurements");
            Assert.Equal(["attention", "attention_percentile", "prob_benign", "prob_malignant"], measurements.EnumerateObject().Select(m => m.Name));
            Assert.All(measurements.EnumerateObject(), m => Assert.Equal(JsonValueKind.Number, m.Value.ValueKind));
            JsonElement ring = feature.GetProperty("geometry").GetProperty("coordinates")[0];
            Assert.Equal(5, ring.GetArrayLength());
            Assert.All(ring.EnumerateArray(), p => Assert.True(p[0].GetDouble() is >= 0 and <= 2220 && p[1].GetDouble() is >= 0 and <= 2967));
        }

        string[] csv = File.ReadAllLines(files.Single(f => f.EndsWith(".tiles.csv", StringComparison.Ordinal)));
        Assert.Equal("minx,miny,width,height,attention,attention_percentile,prob_benign,prob_malignant", csv[0]);
        Assert.Equal(result.Tiles.Count + 1, csv.Length);

        Raster thumbnail = _slide.GetThumbnail(AnalysisFiles.ThumbnailSize);
        foreach (string png in files.Where(f => f.EndsWith(".png", StringComparison.Ordinal)))
        {
            Raster image = ImageCodec.Decode(File.ReadAllBytes(png));
            Assert.Equal((thumbnail.Width, thumbnail.Height), (image.Width, image.Height));
        }

        using JsonDocument summary = JsonDocument.Parse(File.ReadAllText(files.Single(f => f.EndsWith(".summary.json", StringComparison.Ordinal))));
        Assert.Equal(result.PredictedClassName, summary.RootElement.GetProperty("prediction").GetProperty("class").GetString());
        Assert.Empty(Directory.GetFiles(Path.Combine(_folder, "out"), "*.tmp*"));
    }

    [Fact]
    public void Load_FeatureHeadWithoutEncoder_ClearErrorNamingTheEncoderOption()
    {
        var spec = new AttentionMilSpec { Input = MilInput.Features, FeatureSize = 16 };
        string weights = Path.Combine(_folder, "features.safetensors");
        ModelCheckpoint.Save(weights, new AttentionMil(spec, new TensorRandom(1)), new ModelCard { Name = "features", Spec = spec, Classes = ["a", "b"] });

        InvalidDataException error = Assert.Throws<InvalidDataException>(() => AnalysisModel.Load(weights));

        Assert.Contains("is a head on 16-d features: give the tile encoder it was trained with (--encoder NAME.onnx)", error.Message, StringComparison.Ordinal);
    }
}
