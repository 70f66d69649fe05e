using SlidePlugin.Engine.Annotations;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.LabelMasks;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Segmentation;

/// <summary>
/// FCN-MIL beyond MNIST: RGB images of any size, tiled inference, tags from masks or a CSV, checkpoints with a card,
/// and the exports (label PNG, per-class QuPath detections), on generated images whose classes are known by construction.
/// </summary>
public sealed class SegmentationPipelineTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-segmentation").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static LabelTable Table() => SyntheticShapes.Table();

    private (string Images, string Masks) WriteShapes(int count, int size, ulong seed) =>
        SyntheticShapes.Write(Path.Combine(_folder, $"set-{seed}"), count, size, seed);

    private static FullyConvolutionalNet SmallNet(int channels, int classes, ulong seed) =>
        new(new FcnSpec { Channels = channels, Classes = classes, Widths = [8, 16, 16] }, new TensorRandom(seed));

    [Fact]
    public void Predict_TiledLargeImage_EqualsOnePassOverTheWholeImage()
    {
        var random = new TensorRandom(5);
        var pixels = new byte[301 * 262 * 3];
        for (int i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)random.NextInt(256);
        }

        var image = new Raster(301, 262, 3, pixels);
        FullyConvolutionalNet net = SmallNet(3, 3, 9);

        SegmentationMap whole = FcnMil.Predict(net, image, PatchNormalization.Centered, tile: 4096);
        SegmentationMap tiled = FcnMil.Predict(net, image, PatchNormalization.Centered, tile: 64);

        Assert.Equal((76, 66), (whole.MapWidth, whole.MapHeight));   // ⌈301/4⌉, ⌈262/4⌉
        double worst = whole.Probabilities.Zip(tiled.Probabilities, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst < 1e-5, $"tiled inference differs from one pass by {worst}");
        Assert.Equal(whole.Labels, tiled.Labels);
    }

    [Fact]
    public void FromMasks_GeneratedShapes_TagsAreTheClassesAboveTheThreshold()
    {
        (string images, string masks) = WriteShapes(6, 48, seed: 1);

        SegmentationDataset data = SegmentationDataset.FromMasks(images, masks, Table(), minFraction: 0.01);

        Assert.Equal(6, data.Images.Count);
        Assert.Equal(3, data.Channels);
        Assert.Equal([1], data.Images[0].Tags);      // disc only
        Assert.Equal([2], data.Images[1].Tags);      // square only
        Assert.Equal([1, 2], data.Images[2].Tags);   // both (the disc covers ≤ 201 of 2304 pixels, the square 196)
        Assert.Empty(SegmentationDataset.FromMasks(images, masks, Table(), minFraction: 0.2).Images[0].Tags);
    }

    [Fact]
    public void FromMasks_BadInputs_ErrorsNameTheFile()
    {
        (string images, string masks) = WriteShapes(2, 32, seed: 2);
        File.WriteAllBytes(Path.Combine(masks, "img001.png"), ImageCodec.EncodePng(new Raster(31, 32, 1, new byte[31 * 32])));

        var mismatch = Assert.Throws<LabelMaskException>(() => SegmentationDataset.FromMasks(images, masks, Table()));
        Assert.Contains("img001.png", mismatch.Message);
        Assert.Contains("31x32", mismatch.Message);

        File.WriteAllBytes(Path.Combine(masks, "img001.png"), ImageCodec.EncodePng(new Raster(32, 32, 1, Enumerable.Repeat((byte)7, 32 * 32).ToArray())));
        var unknown = Assert.Throws<LabelMaskException>(() => SegmentationDataset.FromMasks(images, masks, Table()));
        Assert.Contains("code 7", unknown.Message);

        File.Delete(Path.Combine(masks, "img001.png"));
        var missing = Assert.Throws<LabelMaskException>(() => SegmentationDataset.FromMasks(images, masks, Table()));
        Assert.Contains("has no mask", missing.Message);
    }

    [Fact]
    public void FromTagsCsv_NamesAndCodes_TagIndicesAndClearErrors()
    {
        (string images, _) = WriteShapes(3, 32, seed: 3);
        string csv = Path.Combine(_folder, "tags.csv");
        File.WriteAllText(csv, "image,tags\nimg000.png,tumor\nimg001.png,2;background\nimg002.png,Tumor;stroma\n");

        SegmentationDataset data = SegmentationDataset.FromTagsCsv(csv, images, Table());

        Assert.Equal([[1], [2], [1, 2]], data.Images.Select(i => i.Tags.ToArray()));
        Assert.All(data.Images, i => Assert.Null(i.Mask));

        File.WriteAllText(csv, "image,tags\nimg000.png,tumor\nimg001.png,necrosis\n");
        var error = Assert.Throws<LabelMaskException>(() => SegmentationDataset.FromTagsCsv(csv, images, Table()));
        Assert.Contains("line 3", error.Message);
        Assert.Contains("necrosis", error.Message);
    }

    [Fact]
    public void Train_TagsFromMasksOnRgbShapes_BeatsTheTagsEverywhereBaseline()
    {
        EngineThreads.Set(2);
        (string images, string masks) = WriteShapes(60, 48, seed: 4);
        SegmentationDataset data = SegmentationDataset.FromMasks(images, masks, Table());
        FullyConvolutionalNet net = SmallNet(3, 3, 1);

        IReadOnlyList<double> losses = FcnMil.Train(net, data.Images, FcnSupervision.Tags, epochs: 6, learningRate: 3e-3f, normalization: PatchNormalization.Centered);
        var predictions = data.Images.Select(i => FcnMil.Predict(net, i.Image, PatchNormalization.Centered, imageLevelThreshold: 0.5f).LabelsAtInputSize()).ToList();
        SegmentationMetrics mil = SegmentationMetrics.Compute([.. data.Images.Select(i => i.RequireMask())], predictions, 3);
        SegmentationMetrics baseline = FcnMil.TagsEverywhere(data.Images, 3);

        Assert.True(losses[^1] < losses[0] * 0.7, $"loss {losses[0]} -> {losses[^1]}");
        Assert.True(mil.MeanIoU > baseline.MeanIoU + 0.2, $"FCN-MIL mean IoU {mil.MeanIoU:0.000} vs baseline {baseline.MeanIoU:0.000}");
    }

    [Fact]
    public void SaveLoad_Checkpoint_SamePredictionsAndTamperedWeightsRejected()
    {
        FullyConvolutionalNet net = SmallNet(3, 3, 11);
        var card = new SegmentationCard { Name = "shapes", Classes = [.. Table().Classes.Select(SegmentationClass.Of)], Mpp = 2.0, InputMean = [0.5f], InputStd = [0.5f] };
        string weights = Path.Combine(_folder, "fcn.safetensors");
        var image = new Raster(40, 36, 3, Enumerable.Range(0, 40 * 36 * 3).Select(i => (byte)(i * 7)).ToArray());

        SegmentationCard written = SegmentationCheckpoint.Save(weights, net, card);
        (FullyConvolutionalNet loaded, SegmentationCard read) = SegmentationCheckpoint.Load(weights);

        Assert.Equal(written.WeightsSha256, read.WeightsSha256);
        Assert.Equal(["background", "tumor", "stroma"], read.Classes.Select(c => c.Name));
        Assert.Equal(FcnMil.Predict(net, image, card.Normalization()).Probabilities, FcnMil.Predict(loaded, image, read.Normalization()).Probabilities);

        byte[] bytes = File.ReadAllBytes(weights);
        bytes[^1] ^= 0x55;
        File.WriteAllBytes(weights, bytes);
        var error = Assert.Throws<ModelCheckpointException>(() => SegmentationCheckpoint.Load(weights));
        Assert.Contains("SHA-256", error.Message);

        File.WriteAllText(ModelCheckpoint.CardPathFor(weights), written.ToJson().Replace("\"fcn-mil\"", "\"unet\"", StringComparison.Ordinal));
        Assert.Contains("unet", Assert.Throws<ModelCheckpointException>(() => SegmentationCheckpoint.Load(weights)).Message);
    }

    [Fact]
    public void Save_CardWithAnUndefinedMetric_RefusedAndTheModelBeforeStaysWhole()
    {
        var card = new SegmentationCard { Name = "shapes", Classes = [.. Table().Classes.Select(SegmentationClass.Of)], Mpp = 2.0 };
        string weights = Path.Combine(_folder, "fcn.safetensors");
        SegmentationCard before = SegmentationCheckpoint.Save(weights, SmallNet(3, 3, 1), card);

        ArgumentException error = Assert.Throws<ArgumentException>(() =>
            SegmentationCheckpoint.Save(weights, SmallNet(3, 3, 2), card with { Metrics = new Dictionary<string, double> { ["train_mean_iou_tags_everywhere"] = double.PositiveInfinity } }));

        Assert.Contains("train_mean_iou_tags_everywhere", error.Message, StringComparison.Ordinal);
        Assert.Equal(before.WeightsSha256, SegmentationCheckpoint.Load(weights).Card.WeightsSha256);
        Assert.Equal(["fcn.json", "fcn.safetensors"], Directory.GetFiles(_folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Detections_RingAndBlock_OnePolygonPerRegionWithItsHoleInLevel0()
    {
        // 6x5 map: class 1 is a 3x3 ring around a background pixel, class 2 a 2x2 block; image 23x20 (last map column covers 3 pixels).
        byte[] labels =
        [
            1, 1, 1, 0, 0, 0,
            1, 0, 1, 0, 2, 2,
            1, 1, 1, 0, 2, 2,
            0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0,
        ];
        var probabilities = new float[3 * 30];
        var map = new SegmentationMap(23, 20, 3, probabilities, labels, [1f, 0.9f, 0.8f]);
        var thresholded = new SegmentationMap(23, 20, 3, probabilities, labels, [0.1f, 0.9f, 0.8f], imageLevelThreshold: 0.85f);
        Assert.Equal([true, true, true], Enumerable.Range(0, 3).Select(map.IsPresent));
        Assert.Equal([true, true, false], Enumerable.Range(0, 3).Select(thresholded.IsPresent));   // background always; stroma below 0.85
        var card = new SegmentationCard { Name = "t", Spec = new FcnSpec { Channels = 3, Classes = 3 }, Classes = [.. Table().Classes.Select(SegmentationClass.Of)] };

        IReadOnlyList<QuPathFeature> features = SegmentationExports.Detections(map, card, new SegmentationPlacement(1000, 2000, 2.0, 2.0, 0.25));

        Assert.Equal(2, features.Count);
        QuPathFeature ring = features.Single(f => f.ClassName == "tumor");
        Assert.Single(ring.Holes);
        Assert.Equal(QuPathObjectType.Detection, ring.ObjectType);
        Assert.Equal((128, 0, 0), ((int)ring.Color.R, (int)ring.Color.G, (int)ring.Color.B));
        Assert.Equal(8 * Math.Pow(4 * 2.0 * 0.25, 2), ring.Measurements!["Area µm^2"], 9);   // 8 map pixels of 4x4 image pixels of 2x2 level-0 pixels of 0.25 µm
        QuPathFeature block = features.Single(f => f.ClassName == "stroma");
        Assert.Equal(1000 + (16 * 2.0), block.Exterior.Min(p => p.X));
        Assert.Equal(1000 + (23 * 2.0), block.Exterior.Max(p => p.X));                     // clipped to the image's right edge
        Assert.Equal(2000 + (4 * 2.0), block.Exterior.Min(p => p.Y));

        LabelMask codes = LabelPalette.Decode(SegmentationExports.LabelPng(map, card), Table(), "label png");
        Assert.Equal((23, 20), (codes.Width, codes.Height));
        Assert.Equal(map.LabelsAtInputSize(), codes.Codes);
        Assert.Equal(2, codes.Codes[(4 * 23) + 16]);   // map pixel (4, 1) fills image pixels 16..19 of rows 4..7
    }
}
