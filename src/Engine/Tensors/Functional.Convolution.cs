using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
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
    /// When the direct kernel takes the shape, one pass writes only the pooled output: the full-size activation is never
    /// stored, and for backward only each window's winning position is kept (one byte per output); backward then builds
    /// the convolution's output gradient chunk by chunk from it, instead of the three operations' full-size gradients.
    /// Otherwise the three operations, recorded as usual. Either way the values and gradients are those of the three
    /// operations.
    /// </summary>
    public static Tensor Conv2dMaxPoolRelu(Tensor x, Tensor weight, Tensor? bias = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        var g = ConvGeometry.Create(x, weight, 1, 0);
        if (!DirectConvolution.Supports(g) || g.OutHeight < 2 || g.OutWidth < 2
            || (bias is not null && (bias.Rank != 1 || bias.Shape[0] != g.OutChannels)))
        {
            Tensor convolved = Conv2d(x, weight, bias);
            Tensor pooled = MaxPool2d(convolved, 2);
            ReleaseUnlessRecorded(convolved);
            Tensor result = Relu(pooled);
            ReleaseUnlessRecorded(pooled);
            return result;
        }

        int n = x.Shape[0];
        Tensor y = Tensor.Empty(n, g.OutChannels, g.OutHeight / 2, g.OutWidth / 2);
        bool record = Autograd.ShouldRecord(x, weight, bias);
        byte[]? windows = record ? ArrayPool<byte>.Shared.Rent(y.Length) : null;
        DirectConvolution.Forward(x.Buffer, n, weight.Buffer, bias?.ToArray(), y.Buffer, g, poolRelu: true, windows);
        if (record)
        {
            Autograd.Record("conv2d_max_pool2d_relu", y, bias is null ? [x, weight] : [x, weight, bias], gy =>
            {
                float[] gradients = gy.Buffer, outputs = y.Buffer;
                Conv2dBackward(x, weight, bias, g, (first, count, destination) =>
                    ExpandPooledGradient(gradients, outputs, windows!, first, count, g, destination));
                ArrayPool<byte>.Shared.Return(windows!);
            });
        }

        return y;
    }

    /// <summary>Disposes an intermediate result at once when no tape holds it (inference).</summary>
    private static void ReleaseUnlessRecorded(Tensor tensor)
    {
        if (!GradMode.IsEnabled || !tensor.RequiresGrad)
        {
            tensor.Dispose();
        }
    }

    /// <summary>
    /// The gradient of conv2d's output for images first..first+count, in GEMM layout [O, count·P], from the pooled
    /// output's: ReLU passes it where the output is positive, max-pooling sends it to the window's winning position,
    /// every other position (and a row or column no window covers) gets zero. Four windows at a time with vector
    /// selects: the winning position is random, and branching on it mispredicted often enough to take 10 ms a bag.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per step over whole activations: optimise at once
    private static void ExpandPooledGradient(float[] pooledGradient, float[] pooledOutput, byte[] windows, int first, int count, ConvGeometry g, float[] destination)
    {
        int positions = g.Positions, width = count * positions, outWidth = g.OutWidth;
        int pooledHeight = g.OutHeight / 2, pooledWidth = g.OutWidth / 2, pooledPlane = pooledHeight * pooledWidth;
        bool uncovered = (g.OutHeight % 2) + (g.OutWidth % 2) != 0;
        Vector256<int> pairs = Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3);
        Vector256<int> topPositions = Vector256.Create(0, 1, 0, 1, 0, 1, 0, 1), bottomPositions = topPositions + Vector256.Create(2);
        for (int o = 0; o < g.OutChannels; o++)
        {
            for (int i = 0; i < count; i++)
            {
                Span<float> plane = destination.AsSpan((o * width) + (i * positions), positions);
                if (uncovered)
                {
                    plane.Clear();
                }

                int source = (((first + i) * g.OutChannels) + o) * pooledPlane;
                for (int r = 0; r < pooledHeight; r++, source += pooledWidth)
                {
                    Span<float> top = plane.Slice(2 * r * outWidth, 2 * pooledWidth), bottom = plane.Slice(((2 * r) + 1) * outWidth, 2 * pooledWidth);
                    int c = 0;
                    for (; c + 4 <= pooledWidth; c += 4)
                    {
                        // ReLU passes the gradient where its output is positive; each window's gradient then goes to its winner's lane.
                        Vector128<float> passed = Vector128.ConditionalSelect(
                            Vector128.GreaterThan(Vector128.Create(pooledOutput.AsSpan(source + c, 4)), Vector128<float>.Zero),
                            Vector128.Create(pooledGradient.AsSpan(source + c, 4)), Vector128<float>.Zero);
                        Vector256<float> gradient = Vector256.Shuffle(Vector256.Create(passed, passed), pairs);
                        uint packed = BinaryPrimitives.ReadUInt32LittleEndian(windows.AsSpan(source + c, 4));
                        Vector256<int> winners = Vector256.Shuffle(
                            Vector256.Create(Vector128.Create((int)(packed & 0xFF), (int)((packed >> 8) & 0xFF), (int)((packed >> 16) & 0xFF), (int)(packed >> 24)), Vector128<int>.Zero), pairs);
                        Vector256.ConditionalSelect(Vector256.Equals(winners, topPositions).AsSingle(), gradient, Vector256<float>.Zero).CopyTo(top.Slice(2 * c, 8));
                        Vector256.ConditionalSelect(Vector256.Equals(winners, bottomPositions).AsSingle(), gradient, Vector256<float>.Zero).CopyTo(bottom.Slice(2 * c, 8));
                    }

                    for (; c < pooledWidth; c++)
                    {
                        float gradient = pooledOutput[source + c] > 0f ? pooledGradient[source + c] : 0f;
                        int winner = windows[source + c];
                        top[2 * c] = winner == 0 ? gradient : 0f;
                        top[(2 * c) + 1] = winner == 1 ? gradient : 0f;
                        bottom[2 * c] = winner == 2 ? gradient : 0f;
                        bottom[(2 * c) + 1] = winner == 3 ? gradient : 0f;
                    }
                }
            }
        }
    }

    /// <summary>Gradients of conv2d for weight, bias and input from its output gradient <paramref name="gy"/> [N, O, OH, OW].</summary>
    private static void Conv2dBackward(Tensor x, Tensor weight, Tensor? bias, Tensor gy, ConvGeometry g)
    {
        float[] gradients = gy.Buffer;
        Conv2dBackward(x, weight, bias, g, (first, count, destination) => GatherChannels(gradients, destination, first, count, g));
    }

    /// <summary>Gradients of conv2d for weight, bias and input, from the output gradient that <paramref name="outputGradient"/> writes chunk by chunk.</summary>
    /// <param name="outputGradient">(first image, image count, destination): writes the output gradient of those images as [O, count·P].</param>
    private static void Conv2dBackward(Tensor x, Tensor weight, Tensor? bias, ConvGeometry g, Action<int, int, float[]> outputGradient)
    {
        int n = x.Shape[0];
        float[] images = x.Buffer, weights = weight.Buffer;
        float[]? imageGradients = x.RequiresGrad ? x.GradTensor().Buffer : null;
        // One partial sum per chunk, added up in chunk order afterwards: the result is the same whichever thread ran
        // which chunk, so training is reproducible.
        int chunks = ChunkCount(n, g);
        float[][]? weightPartials = weight.RequiresGrad ? new float[chunks][] : null;
        float[][]? biasPartials = bias is { RequiresGrad: true } ? new float[chunks][] : null;
        ForEachChunk(n, g, (index, first, count, columns, gradient) =>
        {
            int width = count * g.Positions;
            outputGradient(first, count, gradient);                                                                         // [O, count·P]
            if (weightPartials is not null)
            {
                weightPartials[index] = new float[weight.Length];
                if (DirectConvolution.SupportsWeightGradient(g))
                {
                    DirectConvolution.WeightGradient(images, first, count, gradient, weightPartials[index], g);
                }
                else
                {
                    // The columns are rebuilt rather than kept from the forward pass: the memory matters more.
                    g.ImagesToColumns(images, first, count, columns);
                    Gemm.MultiplySingleThreaded(false, true, g.OutChannels, g.Patch, width, gradient, columns, weightPartials[index]); // [O, count·P]·[count·P, CKK]
                }
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
