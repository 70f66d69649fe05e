using System.Diagnostics;
using System.Globalization;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Tests;

namespace SlidePlugin.Benchmarks.Segmentation;

/// <summary>
/// Pathak-style table on multi-digit MNIST canvases: mean IoU on held-out canvases of FCN-MIL trained on tags only,
/// against the "tags everywhere" baseline and the same FCN trained on the masks (the fully supervised oracle).
/// </summary>
internal static class SegmentationBenchmark
{
    public static int Run(int trainCount, int testCount, int epochs, int threads)
    {
        EngineThreads.Set(threads);
        MnistIdx train = MnistIdx.Load(TestData.Path("mnist"), train: true), test = MnistIdx.Load(TestData.Path("mnist"), train: false);
        IReadOnlyList<TaggedImage> trainCanvases = MnistCanvases.Generate(train, trainCount, seed: 1);
        IReadOnlyList<TaggedImage> testCanvases = MnistCanvases.Generate(test, testCount, seed: 2);
        Console.WriteLine($"FCN-MIL on MNIST canvases 84x84 with 1-3 digits: {trainCount} training, {testCount} test canvases, {epochs} epochs, Adam 1e-3, {threads} threads");
        Console.WriteLine("| method | mean IoU | background IoU | digit IoU (mean of 10) | pixel accuracy | training s | last epoch loss |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        Print("tags everywhere (baseline)", FcnMil.TagsEverywhere(testCanvases, MnistCanvases.Classes), 0, double.NaN);
        foreach (FcnSupervision supervision in new[] { FcnSupervision.Tags, FcnSupervision.Masks })
        {
            var net = new FullyConvolutionalNet(new FcnSpec { Channels = 1, Classes = MnistCanvases.Classes }, new TensorRandom(1));
            var clock = Stopwatch.StartNew();
            IReadOnlyList<double> losses = FcnMil.Train(net, trainCanvases, supervision, epochs);
            double seconds = clock.Elapsed.TotalSeconds;
            var predictions = testCanvases.Select(c => FcnMil.Predict(net, c.Image).LabelsAtInputSize()).ToList();
            SegmentationMetrics metrics = SegmentationMetrics.Compute([.. testCanvases.Select(c => c.RequireMask())], predictions, MnistCanvases.Classes);
            Print(supervision == FcnSupervision.Tags ? "FCN-MIL, tags only" : "FCN, masks (oracle)", metrics, seconds, losses[^1]);
            if (supervision == FcnSupervision.Tags)
            {
                var restricted = testCanvases.Select(c => FcnMil.Predict(net, c.Image, imageLevelThreshold: 0.5f).LabelsAtInputSize()).ToList();
                Print("FCN-MIL, tags only, argmax over the classes found in the image", SegmentationMetrics.Compute([.. testCanvases.Select(c => c.RequireMask())], restricted, MnistCanvases.Classes), seconds, losses[^1]);
            }
        }

        return 0;
    }

    private static void Print(string method, SegmentationMetrics m, double seconds, double loss) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {method} | {m.MeanIoU:0.000} | {m.ClassIoU[0]:0.000} | {m.ClassIoU.Skip(1).Where(v => !double.IsNaN(v)).Average():0.000} | {m.PixelAccuracy:0.000} | {seconds:0} | {loss:0.000} |"));
}
