using SlidePlugin.Engine.Optim;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Segmentation;

/// <summary>How the FCN learns: from image-level tags (MIL, the product) or from the masks (the fully supervised oracle).</summary>
public enum FcnSupervision
{
    /// <summary>Pathak et al.'s multi-class MIL loss on the tags.</summary>
    Tags,

    /// <summary>Per-pixel cross-entropy on the masks (each 4x4 block's majority class): an upper bound, as Pathak's table.</summary>
    Masks,
}

/// <summary>Per-class IoU, mean IoU, pixel accuracy and the confusion matrix (rows: truth, columns: prediction).</summary>
public sealed record SegmentationMetrics(IReadOnlyList<double> ClassIoU, double MeanIoU, double PixelAccuracy, long[,] Confusion)
{
    /// <summary>
    /// The metrics of <paramref name="predictions"/> against <paramref name="truths"/> (label maps of equal size). Mean IoU
    /// averages the classes that occur in the truth (NaN for the others, left out).
    /// </summary>
    public static SegmentationMetrics Compute(IReadOnlyList<byte[]> truths, IReadOnlyList<byte[]> predictions, int classes)
    {
        ArgumentNullException.ThrowIfNull(truths);
        ArgumentNullException.ThrowIfNull(predictions);
        var confusion = new long[classes, classes];
        long correct = 0, total = 0;
        for (int n = 0; n < truths.Count; n++)
        {
            for (int i = 0; i < truths[n].Length; i++)
            {
                confusion[truths[n][i], predictions[n][i]]++;
                correct += truths[n][i] == predictions[n][i] ? 1 : 0;
                total++;
            }
        }

        var iou = new double[classes];
        for (int c = 0; c < classes; c++)
        {
            long tp = confusion[c, c], truth = 0, predicted = 0;
            for (int j = 0; j < classes; j++)
            {
                truth += confusion[c, j];
                predicted += confusion[j, c];
            }

            iou[c] = truth == 0 ? double.NaN : (double)tp / (truth + predicted - tp);
        }

        return new SegmentationMetrics(iou, iou.Where(v => !double.IsNaN(v)).Average(), total == 0 ? 0 : (double)correct / total, confusion);
    }
}

/// <summary>Training and inference of the FCN on canvases (Adam, one image per step, seeded shuffles).</summary>
public static class FcnMil
{
    /// <summary>Trains <paramref name="net"/> for <paramref name="epochs"/>; returns the mean loss of each epoch.</summary>
    public static IReadOnlyList<double> Train(FullyConvolutionalNet net, IReadOnlyList<Canvas> canvases, FcnSupervision supervision, int epochs,
        float learningRate = 1e-3f, ulong seed = 1, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(net);
        ArgumentNullException.ThrowIfNull(canvases);
        var adam = new Adam(net.Parameters(), learningRate);
        var random = new TensorRandom(seed);
        var losses = new List<double>();
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            List<int> order = [.. Enumerable.Range(0, canvases.Count)];
            random.Shuffle(order);
            double sum = 0;
            foreach (int n in order)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Canvas canvas = canvases[n];
                adam.ZeroGrad();
                using Tensor x = MnistCanvases.ToTensor(canvas);
                Tensor logits = net.Forward(x);                                       // [1, K, S/4, S/4]
                Tensor loss = supervision == FcnSupervision.Tags
                    ? MilSegmentationLoss.Compute(logits, canvas.Tags)
                    : PixelLoss(logits, canvas);
                sum += loss.Data[0];
                loss.Backward();
                adam.Step();
                loss.Dispose();
            }

            losses.Add(sum / canvases.Count);
        }

        return losses;
    }

    /// <summary>
    /// Per-class probability maps upsampled to the input (each output pixel covers a 4x4 block: nearest) and the argmax
    /// label map. probabilities: [K, S, S] row-major; labels: S x S. With <paramref name="imageLevelThreshold"/>, the
    /// argmax only considers the background and the classes whose largest probability in the image reaches it (the
    /// image-level prediction the MIL loss trains), as weakly supervised methods commonly do.
    /// </summary>
    public static (float[] Probabilities, byte[] Labels) Predict(FullyConvolutionalNet net, Canvas canvas, float? imageLevelThreshold = null)
    {
        ArgumentNullException.ThrowIfNull(net);
        ArgumentNullException.ThrowIfNull(canvas);
        using GradMode.NoGradScope noGrad = GradMode.NoGrad();
        using Tensor x = MnistCanvases.ToTensor(canvas);
        using Tensor logits = net.Forward(x);                                         // [1, K, h, w]
        using Tensor p = Functional.Softmax(logits, 1);
        int k = logits.Shape[1], h = logits.Shape[2], w = logits.Shape[3], size = canvas.Size, stride = FcnSpec.Stride;
        var probabilities = new float[k * size * size];
        var labels = new byte[size * size];
        ReadOnlySpan<float> low = p.Data;
        var allowed = new bool[k];
        for (int c = 0; c < k; c++)
        {
            allowed[c] = c == 0 || imageLevelThreshold is not { } threshold || TensorPrimitivesMax(low.Slice(c * h * w, h * w)) >= threshold;
        }

        for (int y = 0; y < size; y++)
        {
            for (int x0 = 0; x0 < size; x0++)
            {
                int source = (Math.Min(y / stride, h - 1) * w) + Math.Min(x0 / stride, w - 1), best = 0;
                for (int c = 0; c < k; c++)
                {
                    float value = low[(c * h * w) + source];
                    probabilities[(c * size * size) + (y * size) + x0] = value;
                    if (allowed[c] && value > low[(best * h * w) + source])
                    {
                        best = c;
                    }
                }

                labels[(y * size) + x0] = (byte)best;
            }
        }

        return (probabilities, labels);
    }

    private static float TensorPrimitivesMax(ReadOnlySpan<float> values) => System.Numerics.Tensors.TensorPrimitives.Max(values);

    /// <summary>
    /// The "tags everywhere" baseline: each tagged class predicted over the whole canvas (a class's predicted region is
    /// the canvas when it is tagged), background predicted nowhere. IoU per class over the set; pixel accuracy is not
    /// defined for overlapping predictions (NaN), and the confusion matrix is empty.
    /// </summary>
    public static SegmentationMetrics TagsEverywhere(IReadOnlyList<Canvas> canvases, int classes)
    {
        ArgumentNullException.ThrowIfNull(canvases);
        var truth = new long[classes];
        var union = new long[classes];
        var hits = new long[classes];
        foreach (Canvas canvas in canvases)
        {
            foreach (byte label in canvas.Mask)
            {
                truth[label]++;
            }

            foreach (int tag in canvas.Tags)
            {
                union[tag] += canvas.Mask.Length;   // predicted everywhere; the truth lies inside it
            }
        }

        for (int c = 1; c < classes; c++)
        {
            hits[c] = truth[c];                     // every pixel of a tagged class is predicted as it
        }

        union[0] = truth[0];                        // background: predicted nowhere
        double[] iou = [.. Enumerable.Range(0, classes).Select(c => truth[c] == 0 ? double.NaN : (double)hits[c] / union[c])];
        return new SegmentationMetrics(iou, iou.Where(v => !double.IsNaN(v)).Average(), double.NaN, new long[0, 0]);
    }

    /// <summary>Cross-entropy of every output pixel against its 4x4 block's majority class.</summary>
    private static Tensor PixelLoss(Tensor logits, Canvas canvas)
    {
        int k = logits.Shape[1], h = logits.Shape[2], w = logits.Shape[3], stride = FcnSpec.Stride;
        var targets = new int[h * w];
        Span<int> votes = stackalloc int[k];
        for (int y = 0; y < h; y++)
        {
            for (int x = 0; x < w; x++)
            {
                votes.Clear();
                for (int dy = 0; dy < stride; dy++)
                {
                    for (int dx = 0; dx < stride; dx++)
                    {
                        votes[canvas.Mask[(((y * stride) + dy) * canvas.Size) + (x * stride) + dx]]++;
                    }
                }

                int best = 0;
                for (int c = 1; c < k; c++)
                {
                    best = votes[c] > votes[best] ? c : best;
                }

                targets[(y * w) + x] = best;
            }
        }

        Tensor flat = Functional.Transpose(Functional.Reshape(logits, k, h * w), 0, 1);   // [hw, K]
        return Functional.CrossEntropy(flat, targets);
    }
}
