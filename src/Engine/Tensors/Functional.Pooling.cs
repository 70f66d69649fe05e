using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
        var window = new PoolWindow(h, w, oh, ow, kernelSize, step, padding);
        Parallel.For(0, n * c, EngineThreads.ParallelOptions, plane =>
            MaxPoolPlane(input.AsSpan(plane * h * w, h * w), output.AsSpan(plane * oh * ow, oh * ow),
                argmax is null ? default : argmax.AsSpan(plane * oh * ow, oh * ow), window));

        if (record)
        {
            Autograd.Record("max_pool2d", y, [x], gy =>
            {
                MaxPoolBackward(x.GradData(), gy.Data, argmax!, h * w, oh * ow);
                ArrayPool<int>.Shared.Return(argmax!);
            });
        }

        return y;
    }

    /// <summary>Sends each output's gradient to the input element that was its maximum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per step over whole activations: optimise at once
    private static void MaxPoolBackward(Span<float> gx, ReadOnlySpan<float> g, int[] argmax, int planeSize, int outPlaneSize)
    {
        for (int o = 0; o < g.Length; o++)
        {
            gx[((o / outPlaneSize) * planeSize) + argmax[o]] += g[o];
        }
    }

    private readonly record struct PoolWindow(int Height, int Width, int OutHeight, int OutWidth, int Kernel, int Stride, int Padding);

    /// <summary>
    /// Max pooling of one plane. The maximum is taken without branches (MathF.Max, which keeps NaN as PyTorch does):
    /// on activations a compare-and-branch mispredicts half the time and ran 5x slower. The index, needed only for
    /// backward, is then the first element of the window equal to the maximum, PyTorch's tie rule.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot kernel: optimised from the first call, not after tiering
    private static void MaxPoolPlane(ReadOnlySpan<float> input, Span<float> output, Span<int> argmax, PoolWindow p)
    {
        if (p.Padding == 0 && p.Stride == 2 && p.Kernel == 2)
        {
            MaxPoolPlane2x2(input, output, argmax, p);
            return;
        }

        for (int i = 0; i < p.OutHeight; i++)
        {
            int rowStart = (i * p.Stride) - p.Padding, rowEnd = Math.Min(rowStart + p.Kernel, p.Height);
            rowStart = Math.Max(rowStart, 0);
            for (int j = 0; j < p.OutWidth; j++)
            {
                int colStart = (j * p.Stride) - p.Padding, colEnd = Math.Min(colStart + p.Kernel, p.Width);
                colStart = Math.Max(colStart, 0);
                float best = float.NegativeInfinity;
                for (int r = rowStart; r < rowEnd; r++)
                {
                    ReadOnlySpan<float> row = input.Slice((r * p.Width) + colStart, colEnd - colStart);
                    foreach (float value in row)
                    {
                        best = MathF.Max(best, value);
                    }
                }

                output[(i * p.OutWidth) + j] = best;
                if (!argmax.IsEmpty)
                {
                    argmax[(i * p.OutWidth) + j] = FirstIndexOf(input, best, rowStart, rowEnd, colStart, colEnd, p.Width);
                }
            }
        }
    }

    /// <summary>
    /// LeNet's 2x2 windows with stride 2: eight outputs at a time from two rows of sixteen inputs (even and odd columns
    /// of each row separated by shuffles, then maxed). Vector256.Max keeps NaN, as PyTorch's pooling does. The index
    /// for backward is chosen with compares in the same pass: the first of the window's four elements (row-major)
    /// equal to the maximum, PyTorch's tie rule; a vector holding a NaN maximum takes the scalar path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot kernel: optimised from the first call, not after tiering
    private static void MaxPoolPlane2x2(ReadOnlySpan<float> input, Span<float> output, Span<int> argmax, PoolWindow p)
    {
        Vector256<int> evensThenOdds = Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7);
        Vector256<int> columnPairs = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
        for (int i = 0; i < p.OutHeight; i++)
        {
            ReadOnlySpan<float> top = input.Slice(2 * i * p.Width, p.Width), bottom = input.Slice(((2 * i) + 1) * p.Width, p.Width);
            Span<float> outRow = output.Slice(i * p.OutWidth, p.OutWidth);
            Span<int> indexRow = argmax.IsEmpty ? default : argmax.Slice(i * p.OutWidth, p.OutWidth);
            int j = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                for (; j + 8 <= p.OutWidth; j += 8)
                {
                    (Vector256<float> topEven, Vector256<float> topOdd) = EvensAndOdds(top.Slice(2 * j, 16), evensThenOdds);
                    (Vector256<float> bottomEven, Vector256<float> bottomOdd) = EvensAndOdds(bottom.Slice(2 * j, 16), evensThenOdds);
                    Vector256<float> best = Vector256.Max(Vector256.Max(topEven, topOdd), Vector256.Max(bottomEven, bottomOdd));
                    best.CopyTo(outRow.Slice(j, 8));
                    if (indexRow.IsEmpty)
                    {
                        continue;
                    }

                    if (Vector256.EqualsAll(best, best))   // no NaN: compares decide, last candidate first so the first match wins
                    {
                        Vector256<int> offset = Vector256.Create(p.Width + 1);
                        offset = Vector256.ConditionalSelect(Vector256.Equals(bottomEven, best).AsInt32(), Vector256.Create(p.Width), offset);
                        offset = Vector256.ConditionalSelect(Vector256.Equals(topOdd, best).AsInt32(), Vector256.Create(1), offset);
                        offset = Vector256.ConditionalSelect(Vector256.Equals(topEven, best).AsInt32(), Vector256<int>.Zero, offset);
                        (Vector256.Create((2 * i * p.Width) + (2 * j)) + columnPairs + offset).CopyTo(indexRow.Slice(j, 8));
                    }
                    else
                    {
                        for (int k = j; k < j + 8; k++)
                        {
                            indexRow[k] = FirstIndexOf(input, outRow[k], 2 * i, (2 * i) + 2, 2 * k, (2 * k) + 2, p.Width);
                        }
                    }
                }
            }

            // Four outputs (eight-column inputs: the second LeNet stage's 8x8 maps) with the same compares at half width.
            if (Vector128.IsHardwareAccelerated && j + 4 <= p.OutWidth)
            {
                (Vector128<float> topEven, Vector128<float> topOdd) = EvensAndOdds(top.Slice(2 * j, 8));
                (Vector128<float> bottomEven, Vector128<float> bottomOdd) = EvensAndOdds(bottom.Slice(2 * j, 8));
                Vector128<float> best = Vector128.Max(Vector128.Max(topEven, topOdd), Vector128.Max(bottomEven, bottomOdd));
                best.CopyTo(outRow.Slice(j, 4));
                if (!indexRow.IsEmpty && Vector128.EqualsAll(best, best))
                {
                    Vector128<int> offset = Vector128.Create(p.Width + 1);
                    offset = Vector128.ConditionalSelect(Vector128.Equals(bottomEven, best).AsInt32(), Vector128.Create(p.Width), offset);
                    offset = Vector128.ConditionalSelect(Vector128.Equals(topOdd, best).AsInt32(), Vector128.Create(1), offset);
                    offset = Vector128.ConditionalSelect(Vector128.Equals(topEven, best).AsInt32(), Vector128<int>.Zero, offset);
                    (Vector128.Create((2 * i * p.Width) + (2 * j)) + Vector128.Create(0, 2, 4, 6) + offset).CopyTo(indexRow.Slice(j, 4));
                }
                else if (!indexRow.IsEmpty)
                {
                    for (int k = j; k < j + 4; k++)
                    {
                        indexRow[k] = FirstIndexOf(input, outRow[k], 2 * i, (2 * i) + 2, 2 * k, (2 * k) + 2, p.Width);
                    }
                }

                j += 4;
            }

            for (; j < p.OutWidth; j++)
            {
                outRow[j] = MathF.Max(MathF.Max(top[2 * j], top[(2 * j) + 1]), MathF.Max(bottom[2 * j], bottom[(2 * j) + 1]));
                if (!indexRow.IsEmpty)
                {
                    indexRow[j] = FirstIndexOf(input, outRow[j], 2 * i, (2 * i) + 2, 2 * j, (2 * j) + 2, p.Width);
                }
            }
        }
    }

    /// <summary>Eight consecutive values as their four even-indexed and four odd-indexed ones.</summary>
    private static (Vector128<float> Evens, Vector128<float> Odds) EvensAndOdds(ReadOnlySpan<float> eight)
    {
        Vector128<float> low = Vector128.Create(eight[..4]), high = Vector128.Create(eight[4..]);
        return System.Runtime.Intrinsics.X86.Sse.IsSupported
            ? (System.Runtime.Intrinsics.X86.Sse.Shuffle(low, high, 0b10_00_10_00), System.Runtime.Intrinsics.X86.Sse.Shuffle(low, high, 0b11_01_11_01))
            : (Vector128.Create(low[0], low[2], high[0], high[2]), Vector128.Create(low[1], low[3], high[1], high[3]));
    }

    /// <summary>Sixteen consecutive values as their eight even-indexed and eight odd-indexed ones.</summary>
    private static (Vector256<float> Evens, Vector256<float> Odds) EvensAndOdds(ReadOnlySpan<float> sixteen, Vector256<int> evensThenOdds)
    {
        Vector256<float> low = Vector256.Shuffle(Vector256.Create(sixteen[..8]), evensThenOdds);   // e0 e1 e2 e3 | o0 o1 o2 o3
        Vector256<float> high = Vector256.Shuffle(Vector256.Create(sixteen[8..]), evensThenOdds);  // e4 e5 e6 e7 | o4 o5 o6 o7
        return (Vector256.Create(low.GetLower(), high.GetLower()), Vector256.Create(low.GetUpper(), high.GetUpper()));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot kernel: optimised from the first call, not after tiering
    private static int FirstIndexOf(ReadOnlySpan<float> input, float best, int rowStart, int rowEnd, int colStart, int colEnd, int width)
    {
        for (int r = rowStart; r < rowEnd; r++)
        {
            for (int col = colStart; col < colEnd; col++)
            {
                float value = input[(r * width) + col];
                if (value == best || (float.IsNaN(best) && float.IsNaN(value)))
                {
                    return (r * width) + col;
                }
            }
        }

        return (rowStart * width) + colStart; // a window entirely of padding: unreachable while padding ≤ kernel / 2
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
