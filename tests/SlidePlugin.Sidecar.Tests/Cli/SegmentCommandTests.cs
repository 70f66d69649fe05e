using System.Text.Json;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.LabelMasks;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Sidecar.Cli;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Cli;

/// <summary><c>slideplugin segment train|predict</c> on generated shapes (truth known) and on CMU-1-Small-Region.svs.</summary>
public sealed class SegmentCommandTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-segment-cli").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int exitCode = await SlidePluginCli.RunAsync(args, output, error);
        return (exitCode, output.ToString(), error.ToString());
    }

    private async Task<string> TrainAsync()
    {
        (string images, string masks) = SyntheticShapes.Write(_folder, 60, 48, seed: 4);
        string table = Path.Combine(_folder, "table.tsv");
        File.WriteAllText(table, SyntheticShapes.TableText);
        (int exit, string output, string error) = await RunAsync("segment", "train", "--table", table, "--images", images, "--masks", masks,
            "--out", Path.Combine(_folder, "model"), "--epochs", "6", "--learning-rate", "3e-3", "--mpp", "2");
        Assert.True(exit == ExitCodes.Success, error);
        Assert.Contains("epoch 6: MIL loss", output, StringComparison.Ordinal);
        return Path.Combine(_folder, "model", "fcn-mil.safetensors");
    }

    [Fact]
    public async Task TrainThenPredict_ShapesFromMaskTags_CardScoresAboveBaselineAndOutputsDescribeTheImage()
    {
        string model = await TrainAsync();
        SegmentationCard card = SegmentationCheckpoint.Load(model).Card;
        string image = Path.Combine(_folder, "images", "img002.png");   // disc and square

        (int exit, string output, string error) = await RunAsync("segment", "predict", image, "--model", model, "--out", Path.Combine(_folder, "out"));

        Assert.True(exit == ExitCodes.Success, error);
        Assert.Equal(2.0, card.Mpp);
        Assert.True(card.Metrics["train_mean_iou"] > card.Metrics["train_mean_iou_tags_everywhere"] + 0.2, string.Join(", ", card.Metrics));
        Assert.Equal(7, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);   // labels, overlay, 3 class maps, geojson, summary
        LabelMask labels = LabelPalette.Decode(File.ReadAllBytes(Path.Combine(_folder, "out", "img002-labels.png")), SyntheticShapes.Table(), "labels");
        Assert.Equal((48, 48), (labels.Width, labels.Height));
        Assert.Equal((48, 48), (ImageCodec.Decode(File.ReadAllBytes(Path.Combine(_folder, "out", "img002-overlay.png"))) is var o ? (o.Width, o.Height) : default));
        using JsonDocument geojson = JsonDocument.Parse(File.ReadAllText(Path.Combine(_folder, "out", "img002-segmentation.geojson")));
        string[] classes = [.. geojson.RootElement.GetProperty("features").EnumerateArray()
            .Select(f => f.GetProperty("properties"))
            .Where(p => p.GetProperty("objectType").GetString() == "detection")
            .Select(p => p.GetProperty("classification").GetProperty("name").GetString()!)];
        Assert.Contains("tumor", classes);
        Assert.Contains("stroma", classes);
    }

    [Fact]
    public async Task Train_ClassInTheMasksNeverTagged_WritesALoadableModelAndNamesTheClassesLeftOut()
    {
        // Necrosis covers 5 pixels (0.2 %) of one image, below --min-fraction 0.01: in the masks, never tagged.
        // Lymphocytes are in the table only: no pixel, never tagged, never predicted by the baseline.
        (string images, string masks) = SyntheticShapes.Write(_folder, 6, 48, seed: 2);
        string first = Path.Combine(masks, "img000.png");
        Raster mask = ImageCodec.Decode(File.ReadAllBytes(first));
        mask.Pixels.AsSpan(0, 5).Fill(3);
        File.WriteAllBytes(first, ImageCodec.EncodePng(mask));
        string table = Path.Combine(_folder, "table.tsv");
        File.WriteAllText(table, SyntheticShapes.TableText + "necrosis\t3\t#404040\nlymphocytes\t4\t#0000ff\n");

        (int exit, string output, string error) = await RunAsync("segment", "train", "--table", table, "--images", images, "--masks", masks,
            "--out", Path.Combine(_folder, "model"), "--epochs", "1", "--mpp", "2");

        Assert.True(exit == ExitCodes.Success, error);
        SegmentationCard card = SegmentationCheckpoint.Load(Path.Combine(_folder, "model", "fcn-mil.safetensors")).Card;
        Assert.All(card.Metrics.Values, v => Assert.True(double.IsFinite(v)));
        Assert.InRange(card.Metrics["train_mean_iou_tags_everywhere"], 0, 1);
        Assert.Contains("IoU undefined, left out of the baseline (no pixel in the masks nor tagged): lymphocytes", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Predict_SlideRegion_DetectionsInsideTheRegionInLevel0()
    {
        string model = await TrainAsync();

        (int exit, _, string error) = await RunAsync("segment", "predict", TestData.Path("slides", "CMU-1-Small-Region.svs"), "--model", model,
            "--out", Path.Combine(_folder, "slide"), "--region", "400,600,1200,1000");

        Assert.True(exit == ExitCodes.Success, error);
        using JsonDocument summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(_folder, "slide", "CMU-1-Small-Region-segmentation.json")));
        Assert.Equal(299, summary.RootElement.GetProperty("width").GetInt32());   // 1200 level-0 px at 0.499 µm/px read at 2 µm/px: 299.4
        using JsonDocument geojson = JsonDocument.Parse(File.ReadAllText(Path.Combine(_folder, "slide", "CMU-1-Small-Region-segmentation.geojson")));
        foreach (JsonElement feature in geojson.RootElement.GetProperty("features").EnumerateArray())
        {
            foreach (JsonElement point in feature.GetProperty("geometry").GetProperty("coordinates")[0].EnumerateArray())
            {
                Assert.InRange(point[0].GetDouble(), 400, 1600);
                Assert.InRange(point[1].GetDouble(), 600, 1600);
            }
        }
    }

    /// <summary>An untrained three-class FCN whose card reads slide regions at 2 µm/px (outputs do not matter here).</summary>
    private string UntrainedModel()
    {
        string path = Path.Combine(_folder, "untrained.safetensors");
        SegmentationCheckpoint.Save(path, new FullyConvolutionalNet(new FcnSpec { Channels = 3, Classes = 3, Widths = [8, 16, 16] }, new Engine.Tensors.TensorRandom(1)),
            new SegmentationCard { Name = "untrained", Classes = [.. SyntheticShapes.Table().Classes.Select(SegmentationClass.Of)], Mpp = 2.0 });
        return path;
    }

    [Fact]
    public async Task Predict_SlideRegion_ReportsTheImageSizeAndEnlargementBeforeTheOutputs()
    {
        string model = UntrainedModel();

        (int exit, string output, string error) = await RunAsync("segment", "predict", TestData.Path("slides", "CMU-1-Small-Region.svs"), "--model", model,
            "--out", Path.Combine(_folder, "out"), "--region", "100,200,200,200", "--target-mpp", "0.25");

        Assert.True(exit == ExitCodes.Success, error);
        Assert.Equal("region 200x200 at (100, 200), level 0 at 0.499 µm/px, read at 0.25 µm/px (--target-mpp): 399x399 = 159,201 pixels, enlarged 2x",
            output.Split('\n')[0].TrimEnd('\r'));
    }

    [Fact]
    public async Task Predict_SlideRegionPastTheSizeLimit_RefusedWithTheNumbersAndTheOptionsBeforeReading()
    {
        string model = UntrainedModel();

        (int exit, string output, string error) = await RunAsync("segment", "predict", TestData.Path("slides", "CMU-1-Small-Region.svs"), "--model", model,
            "--out", Path.Combine(_folder, "out"), "--region", "0,0,1000,1000", "--target-mpp", "0.1");

        Assert.Equal(ExitCodes.Failure, exit);
        Assert.Equal("", output);
        Assert.Contains("The region 1000x1000 (level 0 at 0.499 µm/px) read at 0.1 µm/px is 4990x4990 = 24,900,100 pixels, more than the 16,777,216 (4096²)", error, StringComparison.Ordinal);
        Assert.Contains("--region, --target-mpp", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_folder, "out")));
    }

    [Fact]
    public async Task SegmentErrors_NoTagsBadRegionMissingModel_OneLineAndExitCode1()
    {
        string table = Path.Combine(_folder, "table.tsv");
        File.WriteAllText(table, SyntheticShapes.TableText);
        (string images, _) = SyntheticShapes.Write(_folder, 3, 32, seed: 1);

        (int noTagsExit, _, string noTags) = await RunAsync("segment", "train", "--table", table, "--images", images, "--out", Path.Combine(_folder, "m"));
        (int missingExit, _, string missing) = await RunAsync("segment", "predict", Path.Combine(images, "img000.png"), "--model", Path.Combine(_folder, "none.safetensors"));
        string model = await TrainAsync();
        (int regionExit, _, string region) = await RunAsync("segment", "predict", TestData.Path("slides", "CMU-1-Small-Region.svs"), "--model", model,
            "--out", Path.Combine(_folder, "r"), "--region", "2000,2000,900,900");

        Assert.Equal((ExitCodes.Failure, ExitCodes.Failure, ExitCodes.Failure), (noTagsExit, missingExit, regionExit));
        Assert.Contains("--tags", noTags, StringComparison.Ordinal);
        Assert.Contains("none.safetensors", missing, StringComparison.Ordinal);
        Assert.Contains("is not inside the 2220x2967 slide", region, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_folder, "r")));
    }

    [Fact]
    public async Task DatasetCut_SlideRegionWithMask_PatchesAlignedWithTheRegionReadAtTheMaskSize()
    {
        string table = Path.Combine(_folder, "table.tsv");
        File.WriteAllText(table, SyntheticShapes.TableText);
        var codes = new byte[300 * 260];
        Array.Fill(codes, (byte)2);
        string mask = Path.Combine(_folder, "region-mask.png");
        File.WriteAllBytes(mask, ImageCodec.EncodePng(new Raster(300, 260, 1, codes)));
        string slidePath = TestData.Path("slides", "CMU-1-Small-Region.svs");

        (int exit, string output, string error) = await RunAsync("dataset", "cut", "--table", table, "--slide", slidePath, "--region", "100,200,1200,1040",
            "--mask", mask, "--out", Path.Combine(_folder, "cut"), "--size", "128", "--stride", "128");
        (int wrongExit, _, string wrong) = await RunAsync("dataset", "cut", "--table", table, "--slide", slidePath, "--out", Path.Combine(_folder, "cut2"));

        Assert.True(exit == ExitCodes.Success, error);
        Assert.Contains("9 patches of 128 px", output, StringComparison.Ordinal);
        using Engine.Slides.Slide slide = Engine.Slides.Slide.Open(slidePath);
        Raster expected = SlideRegionReader.ReadToSize(slide, 100, 200, 1200, 1040, 300, 260).Crop(172, 132, 128, 128);
        Assert.Equal(expected.Pixels, ImageCodec.Decode(File.ReadAllBytes(Path.Combine(_folder, "cut", "images", "CMU-1-Small-Region_172_132.png"))).Pixels);
        Assert.Equal(ExitCodes.Failure, wrongExit);
        Assert.Contains("--mask", wrong, StringComparison.Ordinal);
    }
}
