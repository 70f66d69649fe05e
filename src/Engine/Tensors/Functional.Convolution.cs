using System.Buffers;
using System.Numerics.Tensors;

namespace SlidePlugin.Engine.Tensors;

/// <summary>2-D convolution as im2col + one GEMM per chunk of images (OpenBLAS).</summary>
public static partial class Functional
{
    /// <summary>
    /// Cross-correlation as <c>torch.nn.functional.conv2d</c> (groups 1, dilation 1).
    /// x: [N, C, H, W]; weight: [O, C, KH, KW]; bias: [O] or null; y: [N, O, OH, OW] with
    /// OH = (H + 2·padding − KH) / stride + 1.
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        var g = ConvGeometry.Create(x, weight, stride, padding);
        if (bias is not null && (bias.Rank != 1 || bias.Shape[0] != g.OutChannels))
        {
            throw new ArgumentException($"conv2d: bias {Tensor.ShapeText(bias.Shape)} should be [{g.OutChannels}].");
        }

        int n = x.Shape[0];
        Tensor y = Tensor.Empty(n, g.OutChannels, g.OutHeight, g.OutWidth);
        float[] images = x.Buffer, output = y.Buffer, weights = weight.Buffer;
        float[]? biasValues = bias?.ToArray();
        // Each worker takes whole chunks: im2col, one single-threaded GEMM, scatter, all on its own buffers.
        ForEachChunk(n, g, (first, count, columns, product) =>
        {
            int width = count * g.Positions;
            g.ImagesToColumns(images, first, count, columns);                                                       // [CKK, count·P]
            Gemm.MultiplySingleThreaded(false, false, g.OutChannels, width, g.Patch, weights, columns, product);    // [O, CKK]·[CKK, count·P]
            ScatterChannels(product, output, first, count, g, biasValues);                                          // → [count, O, P] + bias
        });

        if (Autograd.ShouldRecord(x, weight, bias))
        {
            Autograd.Record("conv2d", y, bias is null ? [x, weight] : [x, weight, bias], gy => Conv2dBackward(x, weight, bias, gy, g));
        }

        return y;
    }

    private static void Conv2dBackward(Tensor x, Tensor weight, Tensor? bias, Tensor gy, ConvGeometry g)
    {
        int n = x.Shape[0];
        float[] images = x.Buffer, gradients = gy.Buffer, weights = weight.Buffer;
        float[]? imageGradients = x.RequiresGrad ? x.GradTensor().Buffer : null;
        float[]? weightGradient = weight.RequiresGrad ? new float[weight.Length] : null;
        float[]? biasGradient = bias is { RequiresGrad: true } ? new float[g.OutChannels] : null;
        object sums = new();
        ForEachChunk(n, g, () => (Weight: weightGradient is null ? null : new float[weightGradient.Length], Bias: biasGradient is null ? null : new float[g.OutChannels]),
            (first, count, columns, gradient, partial) =>
            {
                int width = count * g.Positions;
                GatherChannels(gradients, gradient, first, count, g);                                                           // [O, count·P]
                if (partial.Weight is not null)
                {
                    // The columns are rebuilt rather than kept from the forward pass: the memory matters more.
                    g.ImagesToColumns(images, first, count, columns);
                    Gemm.MultiplySingleThreaded(false, true, g.OutChannels, g.Patch, width, gradient, columns, partial.Weight, beta: 1f); // [O, count·P]·[count·P, CKK]
                }

                if (partial.Bias is not null)
                {
                    for (int o = 0; o < g.OutChannels; o++)
                    {
                        partial.Bias[o] += TensorPrimitives.Sum(gradient.AsSpan(o * width, width));
                    }
                }

                if (imageGradients is not null)
                {
                    Gemm.MultiplySingleThreaded(true, false, g.Patch, width, g.OutChannels, weights, gradient, columns);            // [CKK, O]·[O, count·P]
                    g.ColumnsToImages(columns, imageGradients, first, count);
                }
            },
            partial =>
            {
                lock (sums)
                {
                    if (partial.Weight is not null)
                    {
                        TensorPrimitives.Add(weightGradient, partial.Weight, weightGradient);
                    }

                    if (partial.Bias is not null)
                    {
                        TensorPrimitives.Add(biasGradient, partial.Bias, biasGradient);
                    }
                }
            });

        if (weightGradient is not null)
        {
            Accumulate(weight.GradData(), weightGradient);
        }

        if (biasGradient is not null)
        {
            Accumulate(bias!.GradData(), biasGradient);
        }
    }

    /// <summary>Runs <paramref name="body"/> over chunks of images in parallel, each worker with its own GEMM buffers.</summary>
    private static void ForEachChunk(int images, ConvGeometry g, Action<int, int, float[], float[]> body) =>
        ForEachChunk<object?>(images, g, () => null, (first, count, columns, product, _) => body(first, count, columns, product), _ => { });

    /// <summary>
    /// Runs <paramref name="body"/> over chunks of images in parallel; each worker has its own column and product
    /// buffers and its own <typeparamref name="TLocal"/> state, handed to <paramref name="finish"/> at the end.
    /// </summary>
    private static void ForEachChunk<TLocal>(int images, ConvGeometry g, Func<TLocal> start,
        Action<int, int, float[], float[], TLocal> body, Action<TLocal> finish)
    {
        int threads = EngineThreads.Count;
        int chunk = Math.Min(g.ImagesPerChunk(images), Math.Max(1, (images + threads - 1) / threads));
        int chunks = (images + chunk - 1) / chunk;
        Parallel.For(0, chunks, EngineThreads.ParallelOptions,
            () => (Columns: ArrayPool<float>.Shared.Rent(g.Patch * chunk * g.Positions),
                   Product: ArrayPool<float>.Shared.Rent(g.OutChannels * chunk * g.Positions),
                   Local: start()),
            (index, _, buffers) =>
            {
                int first = index * chunk;
                body(first, Math.Min(chunk, images - first), buffers.Columns, buffers.Product, buffers.Local);
                return buffers;
            },
            buffers =>
            {
                finish(buffers.Local);
                ArrayPool<float>.Shared.Return(buffers.Columns);
                ArrayPool<float>.Shared.Return(buffers.Product);
            });
    }

    /// <summary>[O, count·P] (GEMM layout) → images first..first+count of [N, O, P], adding the bias.</summary>
    private static void ScatterChannels(float[] product, float[] y, int first, int count, ConvGeometry g, float[]? bias)
    {
        int positions = g.Positions, channels = g.OutChannels, width = count * positions;
        for (int i = 0; i < count; i++)
        {
            for (int o = 0; o < channels; o++)
            {
                ReadOnlySpan<float> source = product.AsSpan((o * width) + (i * positions), positions);
                Span<float> destination = y.AsSpan((((first + i) * channels) + o) * positions, positions);
                if (bias is null)
                {
                    source.CopyTo(destination);
                }
                else
                {
                    TensorPrimitives.Add(source, bias[o], destination);
                }
            }
        }
    }

    /// <summary>Images first..first+count of a [N, O, P] gradient → [O, count·P] (GEMM layout).</summary>
    private static void GatherChannels(ReadOnlySpan<float> gy, float[] destination, int first, int count, ConvGeometry g)
    {
        int positions = g.Positions, channels = g.OutChannels, width = count * positions;
        for (int i = 0; i < count; i++)
        {
            for (int o = 0; o < channels; o++)
            {
                gy.Slice((((first + i) * channels) + o) * positions, positions)
                    .CopyTo(destination.AsSpan((o * width) + (i * positions), positions));
            }
        }
    }
}
