using System.Buffers;

namespace SlidePlugin.Engine.Tensors;

/// <summary>Max pooling and adaptive average pooling over [N, C, H, W].</summary>
public static partial class Functional
{
    /// <summary>
    /// Max pooling as <c>torch.nn.functional.max_pool2d</c> (padding with −∞, floor mode). Ties go to the first
    /// maximum in row-major order, as PyTorch's CPU kernel does, so gradients land on the same element.
    /// x: [N, C, H, W] → [N, C, OH, OW], OH = (H + 2·padding − kernel) / stride + 1.
    /// </summary>
    public static Tensor MaxPool2d(Tensor x, int kernelSize, int? stride = null, int padding = 0)
    {
        ArgumentNullException.ThrowIfNull(x);
        RequireImages(x, "max_pool2d");
        int step = stride ?? kernelSize;
        ArgumentOutOfRangeException.ThrowIfLessThan(kernelSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(step, 1);
        if (padding < 0 || padding > kernelSize / 2)
        {
            throw new ArgumentOutOfRangeException(nameof(padding), padding, "max_pool2d: padding must be between 0 and half the kernel size.");
        }

        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        int oh = ((h + (2 * padding) - kernelSize) / step) + 1, ow = ((w + (2 * padding) - kernelSize) / step) + 1;
        if (oh < 1 || ow < 1)
        {
            throw new ArgumentException($"max_pool2d: a {kernelSize}x{kernelSize} window does not fit a {h}x{w} input.");
        }

        Tensor y = Tensor.Empty(n, c, oh, ow);
        bool record = Autograd.ShouldRecord(x);
        int[]? argmax = record ? ArrayPool<int>.Shared.Rent(y.Length) : null;
        float[] input = x.Buffer, output = y.Buffer;
        Parallel.For(0, n * c, EngineThreads.ParallelOptions, plane =>
        {
            int inBase = plane * h * w, outBase = plane * oh * ow;
            for (int i = 0; i < oh; i++)
            {
                int rowStart = (i * step) - padding, rowEnd = Math.Min(rowStart + kernelSize, h);
                rowStart = Math.Max(rowStart, 0);
                for (int j = 0; j < ow; j++)
                {
                    int colStart = (j * step) - padding, colEnd = Math.Min(colStart + kernelSize, w);
                    colStart = Math.Max(colStart, 0);
                    float best = float.NegativeInfinity;
                    int bestIndex = (rowStart * w) + colStart;
                    for (int r = rowStart; r < rowEnd; r++)
                    {
                        for (int col = colStart; col < colEnd; col++)
                        {
                            float value = input[inBase + (r * w) + col];
                            if (value > best || float.IsNaN(value))
                            {
                                best = value;
                                bestIndex = (r * w) + col;
                            }
                        }
                    }

                    output[outBase + (i * ow) + j] = best;
                    if (argmax is not null)
                    {
                        argmax[outBase + (i * ow) + j] = bestIndex;
                    }
                }
            }
        });

        if (record)
        {
            Autograd.Record("max_pool2d", y, [x], gy =>
            {
                Span<float> gx = x.GradData();
                ReadOnlySpan<float> g = gy.Data;
                for (int plane = 0; plane < n * c; plane++)
                {
                    for (int k = 0; k < oh * ow; k++)
                    {
                        int o = (plane * oh * ow) + k;
                        gx[(plane * h * w) + argmax![o]] += g[o];
                    }
                }

                ArrayPool<int>.Shared.Return(argmax!);
            });
        }

        return y;
    }

    /// <summary>
    /// Adaptive average pooling as <c>torch.nn.functional.adaptive_avg_pool2d</c>: output cell (i, j) averages rows
    /// ⌊i·H/OH⌋ ..⌈(i+1)·H/OH⌉ and the same for columns. x: [N, C, H, W] → [N, C, OH, OW].
    /// </summary>
    public static Tensor AdaptiveAvgPool2d(Tensor x, int outputHeight, int outputWidth)
    {
        ArgumentNullException.ThrowIfNull(x);
        RequireImages(x, "adaptive_avg_pool2d");
        ArgumentOutOfRangeException.ThrowIfLessThan(outputHeight, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outputWidth, 1);
        int planes = x.Shape[0] * x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        Tensor y = Tensor.Empty(x.Shape[0], x.Shape[1], outputHeight, outputWidth);
        ForEachAdaptiveCell(planes, h, w, outputHeight, outputWidth, x.Data, y.Data, backward: false);
        if (Autograd.ShouldRecord(x))
        {
            Autograd.Record("adaptive_avg_pool2d", y, [x], gy =>
                ForEachAdaptiveCell(planes, h, w, outputHeight, outputWidth, x.GradData(), gy.Data, backward: true));
        }

        return y;
    }

    /// <summary>Forward: averages input cells into outputs. Backward: spreads each output gradient evenly over its cells.</summary>
    private static void ForEachAdaptiveCell(int planes, int h, int w, int oh, int ow, Span<float> input, Span<float> output, bool backward)
    {
        for (int plane = 0; plane < planes; plane++)
        {
            Span<float> inPlane = input.Slice(plane * h * w, h * w);
            Span<float> outPlane = output.Slice(plane * oh * ow, oh * ow);
            for (int i = 0; i < oh; i++)
            {
                int r0 = i * h / oh, r1 = (((i + 1) * h) + oh - 1) / oh;
                for (int j = 0; j < ow; j++)
                {
                    int c0 = j * w / ow, c1 = (((j + 1) * w) + ow - 1) / ow;
                    float count = (r1 - r0) * (c1 - c0);
                    if (backward)
                    {
                        float share = outPlane[(i * ow) + j] / count;
                        for (int r = r0; r < r1; r++)
                        {
                            for (int col = c0; col < c1; col++)
                            {
                                inPlane[(r * w) + col] += share;
                            }
                        }
                    }
                    else
                    {
                        float sum = 0f;
                        for (int r = r0; r < r1; r++)
                        {
                            for (int col = c0; col < c1; col++)
                            {
                                sum += inPlane[(r * w) + col];
                            }
                        }

                        outPlane[(i * ow) + j] = sum / count;
                    }
                }
            }
        }
    }

    private static void RequireImages(Tensor x, string operation)
    {
        if (x.Rank != 4)
        {
            throw new ArgumentException($"{operation}: input {Tensor.ShapeText(x.Shape)} must be [N, C, H, W].");
        }
    }
}
