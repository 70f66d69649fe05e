using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Segmentation;

public sealed class FcnMilTests
{
    private static readonly Lazy<MnistIdx> Digits = new(() => MnistIdx.Load(TestData.Path("mnist"), train: false));

    [Fact]
    public void Generate_Canvases_TagsAreTheMaskClassesAndMaskedPixelsAreBright()
    {
        IReadOnlyList<TaggedImage> canvases = MnistCanvases.Generate(Digits.Value, 50, seed: 7);

        Assert.All(canvases, c =>
        {
            byte[] mask = c.RequireMask();
            Assert.Equal(mask.Where(m => m != 0).Distinct().Select(m => (int)m).Order(), c.Tags);
            Assert.InRange(c.Tags.Count, 1, 3);
            Assert.All(Enumerable.Range(0, mask.Length).Where(i => mask[i] != 0), i => Assert.True(c.Image.Pixels[i] >= 128));
        });
        Assert.Equal(canvases.Select(c => c.Image.Pixels), MnistCanvases.Generate(Digits.Value, 50, seed: 7).Select(c => c.Image.Pixels));
    }

    [Fact]
    public void Compute_HandMadeMaps_IoUAccuracyAndConfusion()
    {
        byte[] truth = [0, 0, 1, 1, 2, 2];
        byte[] predicted = [0, 1, 1, 1, 2, 0];

        SegmentationMetrics m = SegmentationMetrics.Compute([truth], [predicted], 4);

        Assert.Equal(1.0 / 3, m.ClassIoU[0], 12);   // tp 1, truth 2, predicted 2
        Assert.Equal(2.0 / 3, m.ClassIoU[1], 12);   // tp 2, truth 2, predicted 3
        Assert.Equal(0.5, m.ClassIoU[2], 12);       // tp 1, truth 2, predicted 1
        Assert.True(double.IsNaN(m.ClassIoU[3]));   // absent from the truth: left out of the mean
        Assert.Equal(0.5, m.MeanIoU, 12);
        Assert.Equal(4.0 / 6, m.PixelAccuracy, 12);
        Assert.Equal(1, m.Confusion[2, 0]);
    }

    [Fact]
    public void TagsEverywhere_TwoCanvases_EachTagPredictedOverItsCanvas()
    {
        var a = new TaggedImage("a", new Raster(2, 2, 1, new byte[4]), [3], [0, 3, 3, 0]);
        var b = new TaggedImage("b", new Raster(2, 2, 1, new byte[4]), [5], [0, 0, 0, 5]);

        SegmentationMetrics m = FcnMil.TagsEverywhere([a, b], 6);

        Assert.Equal(0.5, m.ClassIoU[3], 12);   // 2 of the 4 pixels of canvas a
        Assert.Equal(0.25, m.ClassIoU[5], 12);
        Assert.Equal(0, m.ClassIoU[0]);         // background predicted nowhere
        Assert.Equal((0.5 + 0.25 + 0) / 3, m.MeanIoU, 12);
    }

    [Fact]
    public void Compute_ClassPredictedButAbsentFromTheTruth_ScoresZeroAndOnlyEmptyUnionsAreLeftOut()
    {
        byte[] truth = [0, 0, 1, 1];
        byte[] predicted = [0, 2, 1, 1];

        SegmentationMetrics m = SegmentationMetrics.Compute([truth], [predicted], 4);

        Assert.Equal(0, m.ClassIoU[2]);             // predicted once, never true: a wrong prediction, IoU 0
        Assert.True(double.IsNaN(m.ClassIoU[3]));   // empty union: undefined
        Assert.Equal([3], m.UndefinedClasses);
        Assert.Equal((0.5 + 1 + 0) / 3, m.MeanIoU, 12);
    }

    [Fact]
    public void TagsEverywhere_ClassInAMaskButNeverTagged_ScoresZeroNotInfinity()
    {
        // Class 4 covers one pixel of canvas a, below any tagging threshold: the baseline predicts it nowhere.
        var a = new TaggedImage("a", new Raster(2, 2, 1, new byte[4]), [3], [0, 3, 3, 4]);
        var b = new TaggedImage("b", new Raster(2, 2, 1, new byte[4]), [3], [0, 0, 0, 3]);

        SegmentationMetrics m = FcnMil.TagsEverywhere([a, b], 5);

        Assert.Equal(0, m.ClassIoU[4]);
        Assert.Equal(3.0 / 8, m.ClassIoU[3], 12);   // 3 true pixels in the 8 it is predicted over
        Assert.Equal(0, m.ClassIoU[0]);
        Assert.Equal((0 + (3.0 / 8) + 0) / 3, m.MeanIoU, 12);
    }

    [Fact]
    public void Train_TagsOnly_LossFallsAndPredictionsAreDistributionsAtInputSize()
    {
        IReadOnlyList<TaggedImage> canvases = MnistCanvases.Generate(Digits.Value, 120, seed: 3, size: 48, maxDigits: 2);
        var net = new FullyConvolutionalNet(new FcnSpec { Channels = 1, Classes = MnistCanvases.Classes, Widths = [8, 16, 32] }, new TensorRandom(2));

        IReadOnlyList<double> losses = FcnMil.Train(net, canvases, FcnSupervision.Tags, epochs: 3, learningRate: 2e-3f);
        SegmentationMap map = FcnMil.Predict(net, canvases[0].Image);

        Assert.True(losses[^1] < losses[0] * 0.8, $"MIL loss {losses[0]} -> {losses[^1]}");
        Assert.Equal((12, 12), (map.MapWidth, map.MapHeight));
        Assert.Equal(48 * 48, map.LabelsAtInputSize().Length);
        for (int pixel = 0; pixel < 12 * 12; pixel += 7)
        {
            Assert.Equal(1.0, Enumerable.Range(0, MnistCanvases.Classes).Sum(c => (double)map.ClassMap(c)[pixel]), 4);
        }
    }
}
