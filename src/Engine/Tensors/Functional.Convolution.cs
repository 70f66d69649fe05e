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
        int chunk = g.ImagesPerChunk(n);
        float[] columns = ArrayPool<float>.Shared.Rent(g.Patch * chunk * g.Positions);
        float[] product = ArrayPool<float>.Shared.Rent(g.OutChannels * chunk * g.Positions);
        try
        {
            for (int first = 0; first < n; first += chunk)
            {
                int count = Math.Min(chunk, n - first);
                int width = count * g.Positions;
                g.ImagesToColumns(x.Buffer, first, count, columns);                                                    // [CKK, count·P]
                Gemm.Multiply(false, false, g.OutChannels, width, g.Patch, weight.Data, columns, product);          // [O, CKK]·[CKK, count·P]
                ScatterChannels(product, y, first, count, g, bias);                                            // → [count, O, P] + bias
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(columns);
            ArrayPool<float>.Shared.Return(product);
        }

        if (Autograd.ShouldRecord(x, weight, bias))
        {
            Autograd.Record("conv2d", y, bias is null ? [x, weight] : [x, weight, bias], gy => Conv2dBackward(x, weight, bias, gy, g));
        }

        return y;
    }

    private static void Conv2dBackward(Tensor x, Tensor weight, Tensor? bias, Tensor gy, ConvGeometry g)
    {
        int n = x.Shape[0];
        int chunk = g.ImagesPerChunk(n);
        float[] columns = ArrayPool<float>.Shared.Rent(g.Patch * chunk * g.Positions);
        float[] gradient = ArrayPool<float>.Shared.Rent(g.OutChannels * chunk * g.Positions);
        try
        {
            for (int first = 0; first < n; first += chunk)
            {
                int count = Math.Min(chunk, n - first);
                int width = count * g.Positions;
                GatherChannels(gy.Data, gradient, first, count, g);                                                  // [O, count·P]
                if (weight.RequiresGrad)
                {
                    // The columns are rebuilt rather than kept from the forward pass: the memory matters more.
                    g.ImagesToColumns(x.Buffer, first, count, columns);
                    Gemm.Multiply(false, true, g.OutChannels, g.Patch, width, gradient, columns, weight.GradData(), beta: 1f); // [O, count·P]·[count·P, CKK]
                }

                if (bias is { RequiresGrad: true })
                {
                    Span<float> gb = bias.GradData();
                    for (int o = 0; o < g.OutChannels; o++)
                    {
                        gb[o] += TensorPrimitives.Sum(gradient.AsSpan(o * width, width));
                    }
                }

                if (x.RequiresGrad)
                {
                    Gemm.Multiply(true, false, g.Patch, width, g.OutChannels, weight.Data, gradient, columns);      // [CKK, O]·[O, count·P]
                    g.ColumnsToImages(columns, x.GradTensor().Buffer, first, count);
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(columns);
            ArrayPool<float>.Shared.Return(gradient);
        }
    }

    /// <summary>[O, count·P] (GEMM layout) → images first..first+count of [N, O, P], adding the bias.</summary>
    private static void ScatterChannels(float[] product, Tensor y, int first, int count, ConvGeometry g, Tensor? bias)
    {
        int positions = g.Positions, channels = g.OutChannels, width = count * positions;
        float[]? biasValues = bias?.ToArray();
        float[] yBuffer = y.Buffer;
        Parallel.For(0, count, EngineThreads.ParallelOptions, i =>
        {
            for (int o = 0; o < channels; o++)
            {
                ReadOnlySpan<float> source = product.AsSpan((o * width) + (i * positions), positions);
                Span<float> destination = yBuffer.AsSpan((((first + i) * channels) + o) * positions, positions);
                if (biasValues is null)
                {
                    source.CopyTo(destination);
                }
                else
                {
                    TensorPrimitives.Add(source, biasValues[o], destination);
                }
            }
        });
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
