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
        if (DirectConvolution.Supports(g))
        {
            DirectConvolution.Forward(images, n, weights, biasValues, output, g);
        }
        else
        {
            // Each worker takes whole chunks: im2col, one single-threaded GEMM, scatter, all on its own buffers.
            ForEachChunk(n, g, (_, first, count, columns, product) =>
            {
                int width = count * g.Positions;
                g.ImagesToColumns(images, first, count, columns);                                                       // [CKK, count·P]
                Gemm.MultiplySingleThreaded(false, false, g.OutChannels, width, g.Patch, weights, columns, product);    // [O, CKK]·[CKK, count·P]
                ScatterChannels(product, output, first, count, g, biasValues);                                          // → [count, O, P] + bias
            });
        }

        if (Autograd.ShouldRecord(x, weight, bias))
        {
            Autograd.Record("conv2d", y, bias is null ? [x, weight] : [x, weight, bias], gy => Conv2dBackward(x, weight, bias, gy, g));
        }

        return y;
    }

    /// <summary>
    /// relu(max_pool2d(conv2d(x, weight, bias), 2)) for stride-1 unpadded convolutions, as LeNet-style extractors use it.
    /// When nothing records gradients and the direct kernel takes the shape, one pass writes only the pooled output
    /// (the full-size activation is never stored); otherwise the three operations, recorded for backward as usual.
    /// Either way the values are those of the three operations.
    /// </summary>
    public static Tensor Conv2dMaxPoolRelu(Tensor x, Tensor weight, Tensor? bias = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        var g = ConvGeometry.Create(x, weight, 1, 0);
        if (Autograd.ShouldRecord(x, weight, bias) || !DirectConvolution.Supports(g) || g.OutHeight < 2 || g.OutWidth < 2
            || (bias is not null && (bias.Rank != 1 || bias.Shape[0] != g.OutChannels)))
        {
            Tensor convolved = Conv2d(x, weight, bias);
            Tensor pooled = MaxPool2d(convolved, 2);
            if (!GradMode.IsEnabled)
            {
                convolved.Dispose();
            }

            Tensor result = Relu(pooled);
            if (!GradMode.IsEnabled)
            {
                pooled.Dispose();
            }

            return result;
        }

        Tensor y = Tensor.Empty(x.Shape[0], g.OutChannels, g.OutHeight / 2, g.OutWidth / 2);
        DirectConvolution.Forward(x.Buffer, x.Shape[0], weight.Buffer, bias?.ToArray(), y.Buffer, g, poolRelu: true);
        return y;
    }

    private static void Conv2dBackward(Tensor x, Tensor weight, Tensor? bias, Tensor gy, ConvGeometry g)
    {
        int n = x.Shape[0];
        float[] images = x.Buffer, gradients = gy.Buffer, weights = weight.Buffer;
        float[]? imageGradients = x.RequiresGrad ? x.GradTensor().Buffer : null;
        // One partial sum per chunk, added up in chunk order afterwards: the result is the same whichever thread ran
        // which chunk, so training is reproducible.
        int chunks = ChunkCount(n, g);
        float[][]? weightPartials = weight.RequiresGrad ? new float[chunks][] : null;
        float[][]? biasPartials = bias is { RequiresGrad: true } ? new float[chunks][] : null;
        ForEachChunk(n, g, (index, first, count, columns, gradient) =>
        {
            int width = count * g.Positions;
            GatherChannels(gradients, gradient, first, count, g);                                                           // [O, count·P]
            if (weightPartials is not null)
            {
                // The columns are rebuilt rather than kept from the forward pass: the memory matters more.
                g.ImagesToColumns(images, first, count, columns);
                weightPartials[index] = new float[weight.Length];
                Gemm.MultiplySingleThreaded(false, true, g.OutChannels, g.Patch, width, gradient, columns, weightPartials[index]); // [O, count·P]·[count·P, CKK]
            }

            if (biasPartials is not null)
            {
                biasPartials[index] = new float[g.OutChannels];
                for (int o = 0; o < g.OutChannels; o++)
                {
                    biasPartials[index][o] = TensorPrimitives.Sum(gradient.AsSpan(o * width, width));
                }
            }

            if (imageGradients is not null)
            {
                Gemm.MultiplySingleThreaded(true, false, g.Patch, width, g.OutChannels, weights, gradient, columns);            // [CKK, O]·[O, count·P]
                g.ColumnsToImages(columns, imageGradients, first, count);
            }
        });

        foreach (float[] partial in weightPartials ?? [])
        {
            Accumulate(weight.GradData(), partial);
        }

        foreach (float[] partial in biasPartials ?? [])
        {
            Accumulate(bias!.GradData(), partial);
        }
    }

    /// <summary>
    /// Images per chunk: what keeps the column matrix near <c>1 &lt;&lt; 20</c> floats, and small enough that a bag
    /// splits into at least four chunks for the threads. It does not depend on the thread count, so neither do results.
    /// </summary>
    private static int ChunkSize(int images, ConvGeometry g) => Math.Min(g.ImagesPerChunk(images), Math.Max(1, (images + 3) / 4));

    private static int ChunkCount(int images, ConvGeometry g) => (images + ChunkSize(images, g) - 1) / ChunkSize(images, g);

    /// <summary>
    /// Runs <paramref name="body"/>(chunk index, first image, image count, columns, product) over the chunks in
    /// parallel; each worker has its own column and product buffers.
    /// </summary>
    private static void ForEachChunk(int images, ConvGeometry g, Action<int, int, int, float[], float[]> body)
    {
        int chunk = ChunkSize(images, g);
        Parallel.For(0, ChunkCount(images, g), EngineThreads.ParallelOptions,
            () => (Columns: ArrayPool<float>.Shared.Rent(g.Patch * chunk * g.Positions),
                   Product: ArrayPool<float>.Shared.Rent(g.OutChannels * chunk * g.Positions)),
            (index, _, buffers) =>
            {
                int first = index * chunk;
                body(index, first, Math.Min(chunk, images - first), buffers.Columns, buffers.Product);
                return buffers;
            },
            buffers =>
            {
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
