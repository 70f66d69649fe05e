using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SlidePlugin.Engine.Tensors;

/// <summary>The weight gradient of stride-1 convolutions with narrow patches, computed directly (no im2col).</summary>
internal static partial class DirectConvolution
{
    /// <summary>Kernel columns the weight-gradient kernel handles: its 5 x 5 accumulators are 5 channels by 5 columns.</summary>
    private const int KernelColumns = 5;

    /// <summary>Floats per 512-bit vector.</summary>
    private const int Lanes = 16;

    /// <summary>About how many floats of output gradient one image group keeps in L1 while its taps are summed.</summary>
    private const int GroupGradientFloats = 4096;

    /// <summary>Patch sizes (C·KH·KW) up to which the weight gradient is computed directly rather than by im2col + GEMM.</summary>
    private const int NarrowPatch = 128;

    /// <summary>
    /// Whether <see cref="WeightGradient"/> computes this convolution's weight gradient: stride 1, 5 kernel columns,
    /// output channels a multiple of the block, 512-bit vectors, and a narrow patch. The GEMM the direct kernel
    /// replaces is [O, positions]·[positions, C·K·K]: with conv1's 75 columns OpenBLAS ran at 53 GFLOP/s a core and
    /// im2col added a quarter (16.7 ms a bag, direct 8-9 ms); with conv2's 500 it ran at 107 and the direct kernel
    /// saved only 2-3 ms of 19, while its different rounding put one parameter of the five-step Adam comparison with
    /// PyTorch just past the 1e-4 bound (conv1 alone leaves that comparison's worst margin where it was).
    /// </summary>
    public static bool SupportsWeightGradient(ConvGeometry g) =>
        Avx512F.IsSupported && g.Stride == 1 && g.OutChannels % ChannelBlock == 0 && g.KernelWidth == KernelColumns && g.Patch <= NarrowPatch;

    /// <summary>
    /// The weight gradient of images first..first+count into <paramref name="partial"/> [O, C·KH·KW] (overwritten):
    /// dW[o, c, i, j] = Σ_images Σ_(y, x) gy[o, y, x] · x_padded[c, y + i, x + j], from <paramref name="outputGradient"/> in
    /// GEMM layout [O, count·OH·OW]. Where im2col + GEMM writes and packs K·K copies of every input (for conv1 a GEMM of
    /// 20 rows by 75 columns over 10⁴ positions, bound by memory), this reads each input row once per tap row: the output
    /// gradient is laid out with the padded input's row stride, zeros in the columns past the output, so each
    /// (channel, tap row) is a dot product of contiguous runs, 5 output channels by 5 kernel columns of 512-bit
    /// accumulators held in registers. Images go in groups whose gradient rows stay in L1 while every (channel, tap row)
    /// reads them; each group's sums are added to a buffer, lanes summed at the end. Sums run over images in order, so
    /// the result is the same on any thread; measured against float64, its error on conv1's shapes is 0.6-0.7 of OpenBLAS'.
    /// </summary>
    public static unsafe void WeightGradient(float[] images, int first, int count, float[] outputGradient, float[] partial, ConvGeometry g)
    {
        if (!SupportsWeightGradient(g) || first < 0 || count < 1 || (long)(first + count) * g.Channels * g.Height * g.Width > images.Length
            || (long)g.OutChannels * count * g.Positions > outputGradient.Length || (long)g.OutChannels * g.Patch > partial.Length)
        {
            throw new ArgumentException("Direct weight gradient: unsupported geometry or buffers too small for the chunk.");
        }

        int paddedWidth = g.Width + (2 * g.Padding), paddedHeight = g.Height + (2 * g.Padding);
        int run = RoundUp(g.OutHeight * paddedWidth, Lanes);                                  // positions per gradient row, whole vectors
        int planeStride = RoundUp(paddedHeight * paddedWidth, Lanes) + (2 * Lanes);           // the last run's look-ahead load stays in this plane
        long inputLength = (long)count * g.Channels * planeStride, gradientLength = (long)g.OutChannels * count * run;
        long accumulatorLength = (long)g.Channels * g.KernelHeight * ChannelBlock * KernelColumns * Lanes;
        // Aligned to cache lines: the gradient loads then never straddle two.
        float* scratch = (float*)NativeMemory.AlignedAlloc((nuint)((inputLength + gradientLength + accumulatorLength) * sizeof(float)), 64);
        try
        {
            int imageSize = g.Channels * g.Height * g.Width, plane = paddedHeight * paddedWidth;
            fixed (float* source = images)
            {
                for (int i = 0; i < count; i++)
                {
                    for (int c = 0; c < g.Channels; c++)
                    {
                        float* target = scratch + (((long)(i * g.Channels) + c) * planeStride);
                        float* rows = source + ((long)(first + i) * imageSize) + ((long)c * g.Height * g.Width);
                        if (g.Padding == 0)
                        {
                            new ReadOnlySpan<float>(rows, plane).CopyTo(new Span<float>(target, plane));
                        }
                        else
                        {
                            new Span<float>(target, plane).Clear();
                            for (int row = 0; row < g.Height; row++)
                            {
                                ConvGeometry.Copy(rows + (row * g.Width), target + ((row + g.Padding) * paddedWidth) + g.Padding, g.Width);
                            }
                        }

                        new Span<float>(target + plane, planeStride - plane).Clear();
                    }
                }
            }

            int positions = g.Positions, width = count * positions, slack = paddedWidth - g.OutWidth;
            fixed (float* source = outputGradient)
            {
                for (int o = 0; o < g.OutChannels; o++)
                {
                    for (int i = 0; i < count; i++)
                    {
                        float* target = scratch + inputLength + (((long)(o * count) + i) * run);
                        float* rows = source + ((long)o * width) + ((long)i * positions);
                        for (int row = 0; row < g.OutHeight; row++, target += paddedWidth)
                        {
                            ConvGeometry.Copy(rows + (row * g.OutWidth), target, g.OutWidth);
                            new Span<float>(target + g.OutWidth, slack).Clear();
                        }

                        new Span<float>(target, run - (g.OutHeight * paddedWidth)).Clear();
                    }
                }
            }

            var shape = new GradientShape(count, planeStride, paddedWidth, run, Math.Max(1, GroupGradientFloats / (ChannelBlock * run)));
            WeightGradientKernel(scratch, scratch + inputLength, scratch + inputLength + gradientLength, shape, partial, g);
        }
        finally
        {
            NativeMemory.AlignedFree(scratch);
        }
    }

    private readonly record struct GradientShape(int Count, int PlaneStride, int PaddedWidth, int Run, int Group);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void WeightGradientKernel(float* inputs, float* gradients, float* accumulators, GradientShape shape, float[] partial, ConvGeometry g)
    {
        int channels = g.Channels, kh = g.KernelHeight, taps = channels * kh * KernelColumns, rowStride = shape.Count * shape.Run, run = shape.Run;
        int accumulatorFloats = channels * kh * ChannelBlock * KernelColumns * Lanes;
        fixed (float* result = partial)
        {
            for (int block = 0; block < g.OutChannels / ChannelBlock; block++)
            {
                new Span<float>(accumulators, accumulatorFloats).Clear();
                for (int groupStart = 0; groupStart < shape.Count; groupStart += shape.Group)
                {
                    int groupEnd = Math.Min(shape.Count, groupStart + shape.Group);
                    for (int c = 0; c < channels; c++)
                    {
                        for (int ki = 0; ki < kh; ki++)
                        {
                            // a<channel><kernel column>: this group's sums, added to the earlier groups' afterwards (two-level
                            // summation: a long bag's sums then keep float32 rounding near that of a blocked GEMM).
                            float* sums = accumulators + (((c * kh) + ki) * ChannelBlock * KernelColumns * Lanes);
                            Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a04 = default;
                            Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default, a14 = default;
                            Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a24 = default;
                            Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default, a34 = default;
                            Vector512<float> a40 = default, a41 = default, a42 = default, a43 = default, a44 = default;
                            for (int i = groupStart; i < groupEnd; i++)
                            {
                                float* x = inputs + (((i * channels) + c) * shape.PlaneStride) + (ki * shape.PaddedWidth);
                                float* g0 = gradients + (((block * ChannelBlock * shape.Count) + i) * run);
                                Vector512<float> v = Vector512.Load(x), next;
                                for (int q = 0; q < run; q += Lanes, v = next)
                                {
                                    // x[q + j ..] for the five kernel columns j: two loads, the shifts from the pair (valignd), not five straddling loads.
                                    next = Vector512.Load(x + q + Lanes);
                                    Vector512<float> d0 = Vector512.LoadAligned(g0 + q), d1 = Vector512.LoadAligned(g0 + rowStride + q), d2 = Vector512.LoadAligned(g0 + (2 * rowStride) + q);
                                    Vector512<float> d3 = Vector512.LoadAligned(g0 + (3 * rowStride) + q), d4 = Vector512.LoadAligned(g0 + (4 * rowStride) + q);
                                    a00 = Vector512.FusedMultiplyAdd(d0, v, a00); a10 = Vector512.FusedMultiplyAdd(d1, v, a10); a20 = Vector512.FusedMultiplyAdd(d2, v, a20);
                                    a30 = Vector512.FusedMultiplyAdd(d3, v, a30); a40 = Vector512.FusedMultiplyAdd(d4, v, a40);
                                    Vector512<float> w = Shifted(v, next, 1);
                                    a01 = Vector512.FusedMultiplyAdd(d0, w, a01); a11 = Vector512.FusedMultiplyAdd(d1, w, a11); a21 = Vector512.FusedMultiplyAdd(d2, w, a21);
                                    a31 = Vector512.FusedMultiplyAdd(d3, w, a31); a41 = Vector512.FusedMultiplyAdd(d4, w, a41);
                                    w = Shifted(v, next, 2);
                                    a02 = Vector512.FusedMultiplyAdd(d0, w, a02); a12 = Vector512.FusedMultiplyAdd(d1, w, a12); a22 = Vector512.FusedMultiplyAdd(d2, w, a22);
                                    a32 = Vector512.FusedMultiplyAdd(d3, w, a32); a42 = Vector512.FusedMultiplyAdd(d4, w, a42);
                                    w = Shifted(v, next, 3);
                                    a03 = Vector512.FusedMultiplyAdd(d0, w, a03); a13 = Vector512.FusedMultiplyAdd(d1, w, a13); a23 = Vector512.FusedMultiplyAdd(d2, w, a23);
                                    a33 = Vector512.FusedMultiplyAdd(d3, w, a33); a43 = Vector512.FusedMultiplyAdd(d4, w, a43);
                                    w = Shifted(v, next, 4);
                                    a04 = Vector512.FusedMultiplyAdd(d0, w, a04); a14 = Vector512.FusedMultiplyAdd(d1, w, a14); a24 = Vector512.FusedMultiplyAdd(d2, w, a24);
                                    a34 = Vector512.FusedMultiplyAdd(d3, w, a34); a44 = Vector512.FusedMultiplyAdd(d4, w, a44);
                                }
                            }

                            Add(sums, a00, a01, a02, a03, a04);
                            Add(sums + 80, a10, a11, a12, a13, a14);
                            Add(sums + 160, a20, a21, a22, a23, a24);
                            Add(sums + 240, a30, a31, a32, a33, a34);
                            Add(sums + 320, a40, a41, a42, a43, a44);
                        }
                    }
                }

                // Lane sums into the block's weights: accumulator (c, ki, channel, column) → dW[block·5 + channel, c, ki, column].
                for (int c = 0; c < channels; c++)
                {
                    for (int ki = 0; ki < kh; ki++)
                    {
                        float* sums = accumulators + (((c * kh) + ki) * ChannelBlock * KernelColumns * Lanes);
                        for (int o = 0; o < ChannelBlock; o++)
                        {
                            for (int j = 0; j < KernelColumns; j++)
                            {
                                result[(((block * ChannelBlock) + o) * taps) + (((c * kh) + ki) * KernelColumns) + j] = Vector512.Sum(Vector512.Load(sums + (((o * KernelColumns) + j) * Lanes)));
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>Adds five accumulators to the five vectors stored from <paramref name="sums"/> on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Add(float* sums, Vector512<float> j0, Vector512<float> j1, Vector512<float> j2, Vector512<float> j3, Vector512<float> j4)
    {
        (Vector512.Load(sums) + j0).Store(sums);
        (Vector512.Load(sums + 16) + j1).Store(sums + 16);
        (Vector512.Load(sums + 32) + j2).Store(sums + 32);
        (Vector512.Load(sums + 48) + j3).Store(sums + 48);
        (Vector512.Load(sums + 64) + j4).Store(sums + 64);
    }

    /// <summary>Lanes <paramref name="shift"/>.. of <paramref name="low"/> followed by the first of <paramref name="high"/>: x[q + shift ..] from x[q ..] and x[q + 16 ..].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Shifted(Vector512<float> low, Vector512<float> high, [ConstantExpected(Min = 1, Max = 15)] byte shift) =>
        Avx512F.AlignRight32(high.AsInt32(), low.AsInt32(), shift).AsSingle();

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;
}
