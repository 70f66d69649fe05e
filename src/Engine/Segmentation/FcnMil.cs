using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Imaging;
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

/// <summary>
/// Per-class IoU, mean IoU, pixel accuracy and the confusion matrix (rows: truth, columns: prediction). A class's IoU is
/// NaN when its union is empty (neither in the truth nor predicted: IoU is undefined there); such classes are left out
/// of the mean, which is NaN when every class is.
/// </summary>
public sealed record SegmentationMetrics(IReadOnlyList<double> ClassIoU, double MeanIoU, double PixelAccuracy, long[,] Confusion)
{
    /// <summary>The classes whose IoU is undefined (empty union), left out of <see cref="MeanIoU"/>.</summary>
    public IReadOnlyList<int> UndefinedClasses => [.. Enumerable.Range(0, ClassIoU.Count).Where(c => double.IsNaN(ClassIoU[c]))];

    /// <summary>The mean of the defined IoUs (NaN when none is).</summary>
    internal static double MeanOf(IReadOnlyList<double> iou) => iou.Where(v => !double.IsNaN(v)).DefaultIfEmpty(double.NaN).Average();

    /// <summary>The metrics of <paramref name="predictions"/> against <paramref name="truths"/> (label maps of equal size).</summary>
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

            long union = truth + predicted - tp;
            iou[c] = union == 0 ? double.NaN : (double)tp / union;
        }

        return new SegmentationMetrics(iou, MeanOf(iou), total == 0 ? 0 : (double)correct / total, confusion);
    }
}

/// <summary>Training and inference of the FCN (Adam, one image per step, seeded shuffles).</summary>
public static class FcnMil
{
    /// <summary>Input pixels of context around each inference tile: an output pixel sees 10 input pixels either side of its 4x4 block (5x5, pool, 5x5, pool, 3x3), so with 16 the windows give what one pass gives.</summary>
    private const int TileMargin = 16;

    /// <summary>
    /// Trains <paramref name="net"/> for <paramref name="epochs"/> on <paramref name="images"/> (normalised by
    /// <paramref name="normalization"/>, default values / 255); returns the mean loss of each epoch and reports each to
    /// <paramref name="epochDone"/> (epoch from 1, mean loss).
    /// </summary>
    public static IReadOnlyList<double> Train(FullyConvolutionalNet net, IReadOnlyList<TaggedImage> images, FcnSupervision supervision, int epochs,
        float learningRate = 1e-3f, ulong seed = 1, PatchNormalization? normalization = null, Action<int, double>? epochDone = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(net);
        ArgumentNullException.ThrowIfNull(images);
        normalization ??= PatchNormalization.UnitRange;
        var adam = new Adam(net.Parameters(), learningRate);
        var random = new TensorRandom(seed);
        var losses = new List<double>();
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            List<int> order = [.. Enumerable.Range(0, images.Count)];
            random.Shuffle(order);
            double sum = 0;
            foreach (int n in order)
            {
                cancellationToken.ThrowIfCancellationRequested();
                TaggedImage image = images[n];
                adam.ZeroGrad();
                using Tensor x = FcnInput.ToTensor(image.Image, net.Spec.Channels, normalization);
                Tensor logits = net.Forward(x);                                       // [1, K, H/4, W/4]
                Tensor loss = supervision == FcnSupervision.Tags
                    ? MilSegmentationLoss.Compute(logits, image.Tags)
                    : PixelLoss(logits, image);
                sum += loss.Data[0];
                loss.Backward();
                adam.Step();
                loss.Dispose();
            }

            losses.Add(sum / images.Count);
            epochDone?.Invoke(epoch + 1, losses[^1]);
        }

        return losses;
    }

    /// <summary>
    /// The network's maps for <paramref name="image"/>, computed in windows of about <paramref name="tile"/> pixels with
    /// enough context that the result equals one pass over the whole image (memory stays bounded on large regions).
    /// With <paramref name="imageLevelThreshold"/>, the argmax only considers the background and the classes whose
    /// presence (largest probability in the image) reaches it: the image-level prediction the MIL loss trains, as weakly
    /// supervised methods commonly do.
    /// </summary>
    public static SegmentationMap Predict(FullyConvolutionalNet net, Raster image, PatchNormalization? normalization = null, float? imageLevelThreshold = null,
        int tile = 512, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(net);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfLessThan(tile, 4 * FcnSpec.Stride);
        normalization ??= PatchNormalization.UnitRange;
        int stride = FcnSpec.Stride, k = net.Spec.Classes;
        int mapWidth = (image.Width + stride - 1) / stride, mapHeight = (image.Height + stride - 1) / stride, plane = mapWidth * mapHeight;
        int tileMap = tile / stride, margin = TileMargin / stride;
        var probabilities = new float[k * plane];
        using (GradMode.NoGrad())
        {
            for (int top = 0; top < mapHeight; top += tileMap)
            {
                for (int left = 0; left < mapWidth; left += tileMap)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    int right = Math.Min(left + tileMap, mapWidth), bottom = Math.Min(top + tileMap, mapHeight);
                    int x0 = Math.Max(0, left - margin) * stride, y0 = Math.Max(0, top - margin) * stride;
                    int x1 = Math.Min(image.Width, (right + margin) * stride), y1 = Math.Min(image.Height, (bottom + margin) * stride);
                    Raster window = x0 == 0 && y0 == 0 && x1 == image.Width && y1 == image.Height ? image : image.Crop(x0, y0, x1 - x0, y1 - y0);
                    using Tensor x = FcnInput.ToTensor(window, net.Spec.Channels, normalization);
                    using Tensor logits = net.Forward(x);                                 // [1, K, h, w]
                    using Tensor p = Functional.Softmax(logits, 1);
                    int h = logits.Shape[2], w = logits.Shape[3], ox = left - (x0 / stride), oy = top - (y0 / stride);
                    ReadOnlySpan<float> low = p.Data;
                    for (int c = 0; c < k; c++)
                    {
                        for (int y = top; y < bottom; y++)
                        {
                            low.Slice((c * h * w) + ((y - top + oy) * w) + ox, right - left)
                                .CopyTo(probabilities.AsSpan((c * plane) + (y * mapWidth) + left, right - left));
                        }
                    }
                }
            }
        }

        var presence = new float[k];
        var allowed = new bool[k];
        for (int c = 0; c < k; c++)
        {
            presence[c] = TensorPrimitivesMax(probabilities.AsSpan(c * plane, plane));
            allowed[c] = SegmentationMap.IsPresent(c, presence[c], imageLevelThreshold);
        }

        var labels = new byte[plane];
        for (int i = 0; i < plane; i++)
        {
            int best = 0;
            for (int c = 1; c < k; c++)
            {
                if (allowed[c] && probabilities[(c * plane) + i] > probabilities[(best * plane) + i])
                {
                    best = c;
                }
            }

            labels[i] = (byte)best;
        }

        return new SegmentationMap(image.Width, image.Height, k, probabilities, labels, presence, imageLevelThreshold);
    }

    private static float TensorPrimitivesMax(ReadOnlySpan<float> values) => System.Numerics.Tensors.TensorPrimitives.Max(values);

    /// <summary>
    /// The "tags everywhere" baseline: each tagged class predicted over the whole image (a class's predicted region is
    /// the image when it is tagged), background predicted nowhere. IoU per class over the set (NaN where the union is
    /// empty: a class neither in the masks nor tagged); pixel accuracy is not defined for overlapping predictions (NaN),
    /// and the confusion matrix is empty.
    /// </summary>
    public static SegmentationMetrics TagsEverywhere(IReadOnlyList<TaggedImage> images, int classes)
    {
        ArgumentNullException.ThrowIfNull(images);
        var union = new long[classes];
        var hits = new long[classes];
        foreach (TaggedImage image in images)
        {
            byte[] mask = image.RequireMask();
            var truth = new long[classes];
            foreach (byte label in mask)
            {
                truth[label]++;
            }

            var tagged = new bool[classes];
            foreach (int tag in image.Tags)
            {
                tagged[tag] = true;
            }

            for (int c = 0; c < classes; c++)
            {
                // Tagged: predicted everywhere, so the image is the union and its truth the hits. Untagged (background, or
                // a class below the tagging threshold): predicted nowhere, so its truth is union and no hit.
                bool predicted = c > 0 && tagged[c];
                union[c] += predicted ? mask.Length : truth[c];
                hits[c] += predicted ? truth[c] : 0;
            }
        }

        double[] iou = [.. Enumerable.Range(0, classes).Select(c => union[c] == 0 ? double.NaN : (double)hits[c] / union[c])];
        return new SegmentationMetrics(iou, SegmentationMetrics.MeanOf(iou), double.NaN, new long[0, 0]);
    }

    /// <summary>Cross-entropy of every output pixel against its 4x4 block's majority class (the block's pixels inside the image).</summary>
    private static Tensor PixelLoss(Tensor logits, TaggedImage image)
    {
        int k = logits.Shape[1], h = logits.Shape[2], w = logits.Shape[3], stride = FcnSpec.Stride, width = image.Image.Width, height = image.Image.Height;
        byte[] mask = image.RequireMask();
        var targets = new int[h * w];
        Span<int> votes = stackalloc int[k];
        for (int y = 0; y < h; y++)
        {
            for (int x = 0; x < w; x++)
            {
                votes.Clear();
                for (int row = y * stride; row < Math.Min((y + 1) * stride, height); row++)
                {
                    for (int column = x * stride; column < Math.Min((x + 1) * stride, width); column++)
                    {
                        votes[mask[(row * width) + column]]++;
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
