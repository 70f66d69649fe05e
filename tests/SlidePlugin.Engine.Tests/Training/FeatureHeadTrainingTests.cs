using System.Globalization;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Encoders;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Engine.Training;
using SlidePlugin.Tests;
using Xunit.Abstractions;

namespace SlidePlugin.Engine.Tests.Training;

/// <summary>
/// A gated A-MIL, CLAM-SB or CLAM-MB head trained on tile features, CLAM's way, from slide labels only: generated slides
/// whose tissue does or does not hold a planted tumour-like texture; the head must separate the held-out slides and attend
/// to the planted tiles.
/// </summary>
public sealed class FeatureHeadTrainingTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-feature-head").FullName;
    private string _encoder = "";

    public async Task InitializeAsync()
    {
        _encoder = Path.Combine(_folder, "small");
        await TestEncoders.ExportSmallAsync(_encoder);
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_folder, recursive: true);
        return Task.CompletedTask;
    }

    [Theory]
    [InlineData(MilVariant.Ilse)]
    [InlineData(MilVariant.ClamSb)]
    [InlineData(MilVariant.ClamMb)]
    public void Train_FeaturesOfSlidesWithAndWithoutAPlantedTexture_TestAucOneAndAttentionOnThePlantedTiles(MilVariant variant)
    {
        // 14 slides: 8 train, 2 validation, 4 test, half of each with the texture planted in a quarter of the tissue,
        // each in another place so that position cannot stand in for content.
        var rows = new List<string> { "slide,label,split" };
        var plantedOf = new Dictionary<string, Level0Rect>();
        string[] splits = ["train", "train", "train", "train", "val", "test", "test"];
        for (int i = 0; i < 14; i++)
        {
            (string slide, bool tumour, Level0Rect planted) = SyntheticSlides.CohortSlide(i);
            string name = $"s{i:D2}{(tumour ? "-tumour" : "")}.tiff";
            string link = Path.Combine(_folder, name);
            File.CreateSymbolicLink(link, slide);
            if (tumour)
            {
                plantedOf[name] = planted;
            }

            rows.Add($"{name},{(tumour ? "tumour" : "normal")},{splits[i / 2]}");
        }

        string csv = Path.Combine(_folder, "slides.csv");
        File.WriteAllLines(csv, rows);
        using TileEncoder encoder = TileEncoder.Load(_encoder + ".onnx");
        var bags = new FeatureBags(csv, encoder, Path.Combine(_folder, "features"));
        var trainer = new MilTrainer(bags, new TrainingOptions { Variant = variant, Epochs = 20, Seed = 3, LearningRate = 5e-4f, ModelName = "tumour-head" }, Path.Combine(_folder, "run"));

        TrainingResult result = trainer.Run();

        Assert.Equal(MilInput.Features, trainer.Spec.Input);
        Assert.Equal(128, trainer.Spec.FeatureSize);
        Assert.Equal(variant, trainer.Spec.Variant);
        Assert.NotNull(result.Test);
        Assert.Equal(4, result.Test!.Count);
        Assert.Equal(1.0, result.Test.Auc);

        // Top-decile attention precision on the test slides with the texture: the share of the most attended tiles
        // that lie in the planted region (a quarter of the tiles there).
        (AttentionMil head, ModelCard card) = ModelCheckpoint.Load(result.BestModelPath!);
        Assert.Contains("small-seed0 features", card.TrainingData, StringComparison.Ordinal);
        var precisions = new List<double>();
        foreach (int index in result.Split.Test.Where(i => bags.Items[i].Label == bags.Classes.ToList().IndexOf("tumour")))
        {
            SafeTensorsFile file = SafeTensors.Load(bags.FileOf(index));
            float[] coords = file.ToTensor("coords").ToArray();
            float[] attention;
            using (GradMode.NoGrad())
            using (Tensor features = bags.Load(index))
            using (MilOutput forward = head.Forward(features))
            {
                attention = forward.Attention.Data.ToArray();
            }

            Level0Rect planted = plantedOf[bags.Items[index].Id];
            int top = Math.Max(1, attention.Length / 10);
            int[] ranked = [.. Enumerable.Range(0, attention.Length).OrderByDescending(i => attention[i]).Take(top)];
            double precision = ranked.Count(i => Inside(coords, i, planted)) / (double)top;
            precisions.Add(precision);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{variant} {bags.Items[index].Id}: {attention.Length} tiles, top {top} by attention, {precision:P0} in the planted region ({Enumerable.Range(0, attention.Length).Count(i => Inside(coords, i, planted)) / (double)attention.Length:P0} of all tiles are)"));
        }

        // About 8 % of a tumour slide's tiles lie in the planted region: attention that ignored content would put about 8 % of
        // its top decile there. Measured 82-90 % (Haswell kernel); the bar, 60 %, is 7x chance and leaves room for other
        // BLAS kernels, which round the training differently.
        Assert.Equal(2, precisions.Count);
        Assert.All(precisions, p => Assert.True(p >= 0.6, $"top-decile attention precision {p:P0}"));
    }

    private static bool Inside(float[] coords, int i, Level0Rect region)
    {
        float x = coords[i * 4], y = coords[(i * 4) + 1], w = coords[(i * 4) + 2], h = coords[(i * 4) + 3];
        return x >= region.X && y >= region.Y && x + w <= region.X + region.Width && y + h <= region.Y + region.Height;
    }
}
