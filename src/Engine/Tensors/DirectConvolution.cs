using System.Buffers;
using System.Numerics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SlidePlugin.Engine.Tensors;

/// <summary>
/// The forward pass of small stride-1 convolutions (the A-MIL extractor's 5x5 kernels over 20-50 channels) computed
/// directly instead of im2col + GEMM: each input vector of 8 columns is loaded once and multiplied into 5 output
/// channels x 2 output rows of accumulators held in registers, taps summed in (channel, row, column) order and the
/// bias added last, as im2col + GEMM does. For these shapes
/// OpenBLAS' GEMM runs far below peak (5 to 20 output channels are too few rows for its kernels) and im2col writes
/// K·K copies of every input; here the input stays in cache and there is no column matrix. Each image is first copied
/// into a zero-padded buffer whose rows are wide enough for whole vectors, so no load needs a mask.
/// </summary>
internal static class DirectConvolution
{
    /// <summary>Output channels per register block.</summary>
    private const int ChannelBlock = 5;

    /// <summary>Whether the direct kernel computes this convolution: stride 1, output channels a multiple of the block, and an output at most 64 wide.</summary>
    public static bool Supports(ConvGeometry g) =>
        Vector256.IsHardwareAccelerated && g.Stride == 1 && g.OutChannels % ChannelBlock == 0 && g.OutWidth <= 64 && g.KernelWidth <= 16;

    /// <summary>
    /// y = conv(x, weight) + bias for every image of [N, C, H, W] into [N, O, OH, OW]; with <paramref name="poolRelu"/>,
    /// y = relu(max_pool2d(conv(x, weight) + bias, 2)) into [N, O, OH/2, OW/2] instead, the two output rows each step
    /// computes being the pool's window rows (the same values as the three operations one after another).
    /// <paramref name="windows"/>, when given with <paramref name="poolRelu"/>, receives for each pooled output the
    /// position of its maximum in the 2x2 window (0 top left, 1 top right, 2 bottom left, 3 bottom right): the first
    /// maximum in row-major order, or the first NaN, as <see cref="Functional.MaxPool2d"/> chooses it for backward.
    /// </summary>
    public static void Forward(float[] images, int count, float[] weights, float[]? bias, float[] output, ConvGeometry g, bool poolRelu = false,
        byte[]? windows = null)
    {
        // Pooled: conv2's blocked weights are 100 KB, a large-object allocation on every call otherwise.
        float[] blocked = ArrayPool<float>.Shared.Rent(g.OutChannels * g.Patch);
        try
        {
            BlockWeights(weights, g, blocked);
            int vectors = (g.OutWidth + 7) / 8;
            int paddedWidth = (vectors * 8) + g.KernelWidth - 1, paddedHeight = g.Height + (2 * g.Padding) + 1;   // +1 row: the odd last output row reads one more
            int paddedImage = g.Channels * paddedHeight * paddedWidth;
            Parallel.For(0, count, EngineThreads.ParallelOptions, () => ArrayPool<float>.Shared.Rent(paddedImage + (vectors * 8 * 2 * ChannelBlock)), (n, _, scratch) =>
            {
                Pad(images, n, g, scratch, paddedHeight, paddedWidth);
                ImageForward(scratch, paddedHeight, paddedWidth, blocked, bias, output, n, g, vectors, scratch.AsSpan(paddedImage, vectors * 8 * 2 * ChannelBlock), poolRelu,
                    poolRelu ? windows : null);
                return scratch;
            }, scratch => ArrayPool<float>.Shared.Return(scratch));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(blocked);
        }
    }

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
                                CopyRow(rows + (row * g.Width), target + ((row + g.Padding) * paddedWidth) + g.Padding, g.Width);
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
                            CopyRow(rows + (row * g.OutWidth), target, g.OutWidth);
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

    /// <summary>Copies a short row with 8-float vectors, the last one overlapping the one before (rows of 8-30 floats, millions of them a bag).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void CopyRow(float* source, float* target, int length)
    {
        if (length < 8)
        {
            new ReadOnlySpan<float>(source, length).CopyTo(new Span<float>(target, length));
            return;
        }

        for (int k = 0; k < length - 8; k += 8)
        {
            Vector256.Load(source + k).Store(target + k);
        }

        Vector256.Load(source + length - 8).Store(target + length - 8);
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

    /// <summary>[O, C, KH, KW] → [O/5, C, KH, KW, 5]: the five weights one input vector meets are adjacent.</summary>
    private static void BlockWeights(float[] weights, ConvGeometry g, float[] blocked)
    {
        int taps = g.Patch;
        for (int o = 0; o < g.OutChannels; o++)
        {
            int block = o / ChannelBlock, lane = o % ChannelBlock;
            for (int t = 0; t < taps; t++)
            {
                blocked[(((block * taps) + t) * ChannelBlock) + lane] = weights[(o * taps) + t];
            }
        }
    }

    /// <summary>Image <paramref name="n"/> into [C, paddedHeight, paddedWidth], the convolution's padding and the vector slack zero.</summary>
    private static void Pad(float[] images, int n, ConvGeometry g, float[] target, int paddedHeight, int paddedWidth)
    {
        Array.Clear(target, 0, g.Channels * paddedHeight * paddedWidth);
        int imageSize = g.Channels * g.Height * g.Width;
        for (int c = 0; c < g.Channels; c++)
        {
            for (int row = 0; row < g.Height; row++)
            {
                images.AsSpan((n * imageSize) + (((c * g.Height) + row) * g.Width), g.Width)
                    .CopyTo(target.AsSpan((((c * paddedHeight) + row + g.Padding) * paddedWidth) + g.Padding, g.Width));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void ImageForward(float[] padded, int paddedHeight, int paddedWidth, float[] blocked, float[]? bias, float[] output, int n, ConvGeometry g,
        int vectors, Span<float> rows, bool poolRelu, byte[]? windows)
    {
        int kh = g.KernelHeight, kw = g.KernelWidth, channels = g.Channels, plane = paddedHeight * paddedWidth;
        int taps = channels * kh * kw, outPlane = g.OutHeight * g.OutWidth;
        int pooledHeight = g.OutHeight / 2, pooledWidth = g.OutWidth / 2, pooledPlane = pooledHeight * pooledWidth;
        fixed (float* input = padded)
        fixed (float* weightBase = blocked)
        fixed (float* result = output)
        fixed (float* stage = rows)
        {
            for (int block = 0; block < g.OutChannels / ChannelBlock; block++)
            {
                float* w0 = weightBase + (block * taps * ChannelBlock);
                Vector256<float> b0 = Start(bias, (block * ChannelBlock) + 0), b1 = Start(bias, (block * ChannelBlock) + 1), b2 = Start(bias, (block * ChannelBlock) + 2);
                Vector256<float> b3 = Start(bias, (block * ChannelBlock) + 3), b4 = Start(bias, (block * ChannelBlock) + 4);
                Vector256<float> zero = Vector256<float>.Zero;
                for (int y = 0; y < (poolRelu ? pooledHeight * 2 : g.OutHeight); y += 2)
                {
                    for (int v = 0; v < vectors; v++)
                    {
                        Vector256<float> a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero;   // row y
                        Vector256<float> c0 = zero, c1 = zero, c2 = zero, c3 = zero, c4 = zero;   // row y + 1
                        float* w = w0;
                        for (int c = 0; c < channels; c++)
                        {
                            float* source = input + (c * plane) + (y * paddedWidth) + (v * 8);
                            for (int i = 0; i < kh; i++)
                            {
                                float* top = source + (i * paddedWidth), below = top + paddedWidth;
                                for (int j = 0; j < kw; j++, w += ChannelBlock)
                                {
                                    Vector256<float> x0 = Vector256.Load(top + j), x1 = Vector256.Load(below + j);
                                    Vector256<float> k = Vector256.Create(w[0]);
                                    a0 = Vector256.FusedMultiplyAdd(x0, k, a0);
                                    c0 = Vector256.FusedMultiplyAdd(x1, k, c0);
                                    k = Vector256.Create(w[1]);
                                    a1 = Vector256.FusedMultiplyAdd(x0, k, a1);
                                    c1 = Vector256.FusedMultiplyAdd(x1, k, c1);
                                    k = Vector256.Create(w[2]);
                                    a2 = Vector256.FusedMultiplyAdd(x0, k, a2);
                                    c2 = Vector256.FusedMultiplyAdd(x1, k, c2);
                                    k = Vector256.Create(w[3]);
                                    a3 = Vector256.FusedMultiplyAdd(x0, k, a3);
                                    c3 = Vector256.FusedMultiplyAdd(x1, k, c3);
                                    k = Vector256.Create(w[4]);
                                    a4 = Vector256.FusedMultiplyAdd(x0, k, a4);
                                    c4 = Vector256.FusedMultiplyAdd(x1, k, c4);
                                }
                            }
                        }

                        // The bias last, as im2col + GEMM adds it: the same rounding, so near-ties in a following max-pool fall the same way.
                        a0 += b0; a1 += b1; a2 += b2; a3 += b3; a4 += b4;
                        c0 += b0; c1 += b1; c2 += b2; c3 += b3; c4 += b4;

                        float* s = stage + (v * 8 * 2 * ChannelBlock);
                        if (poolRelu)
                        {
                            // Rows y and y + 1 are one window row pair: vertical max, then each even column with its right neighbour, then ReLU.
                            PoolRelu(a0, c0).Store(s); PoolRelu(a1, c1).Store(s + 8); PoolRelu(a2, c2).Store(s + 16);
                            PoolRelu(a3, c3).Store(s + 24); PoolRelu(a4, c4).Store(s + 32);
                            int pairs = Math.Min(4, pooledWidth - (v * 4));
                            for (int o = 0; o < ChannelBlock && pairs > 0; o++)
                            {
                                int pooledIndex = (((n * g.OutChannels) + (block * ChannelBlock) + o) * pooledPlane) + (y / 2 * pooledWidth) + (v * 4);
                                new ReadOnlySpan<float>(s + (o * 8), pairs).CopyTo(new Span<float>(result + pooledIndex, pairs));
                            }

                            if (windows is not null && pairs > 0)
                            {
                                int pooledIndex = (((n * g.OutChannels) + (block * ChannelBlock)) * pooledPlane) + (y / 2 * pooledWidth) + (v * 4);
                                WindowMaxima(a0, c0, windows, pooledIndex, pairs);
                                WindowMaxima(a1, c1, windows, pooledIndex + pooledPlane, pairs);
                                WindowMaxima(a2, c2, windows, pooledIndex + (2 * pooledPlane), pairs);
                                WindowMaxima(a3, c3, windows, pooledIndex + (3 * pooledPlane), pairs);
                                WindowMaxima(a4, c4, windows, pooledIndex + (4 * pooledPlane), pairs);
                            }

                            continue;
                        }

                        // Stage the 5 x 2 vectors, then copy the columns that exist (the last vector may overhang the row).
                        a0.Store(s); a1.Store(s + 8); a2.Store(s + 16); a3.Store(s + 24); a4.Store(s + 32);
                        c0.Store(s + 40); c1.Store(s + 48); c2.Store(s + 56); c3.Store(s + 64); c4.Store(s + 72);
                        int columns = Math.Min(8, g.OutWidth - (v * 8));
                        for (int o = 0; o < ChannelBlock; o++)
                        {
                            float* target = result + ((((n * g.OutChannels) + (block * ChannelBlock) + o) * outPlane) + (y * g.OutWidth) + (v * 8));
                            new ReadOnlySpan<float>(s + (o * 8), columns).CopyTo(new Span<float>(target, columns));
                            if (y + 1 < g.OutHeight)
                            {
                                new ReadOnlySpan<float>(s + 40 + (o * 8), columns).CopyTo(new Span<float>(target + g.OutWidth, columns));
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>max over the two rows, then over column pairs (2j, 2j + 1), then with 0; the four results in the low lanes. Max keeps NaN, as PyTorch's pooling does.</summary>
    private static Vector256<float> PoolRelu(Vector256<float> top, Vector256<float> bottom)
    {
        Vector256<float> rows = Vector256.Max(top, bottom);
        Vector256<float> pairs = Vector256.Max(rows, Vector256.Shuffle(rows, Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6)));
        return Vector256.Max(Vector256.Shuffle(pairs, Vector256.Create(0, 2, 4, 6, 0, 2, 4, 6)), Vector256<float>.Zero);
    }

    /// <summary>
    /// For the four 2x2 windows of a row pair (columns 2j, 2j + 1 of <paramref name="top"/> and <paramref name="bottom"/>),
    /// the position of the first maximum in row-major order, or of the first NaN, into <paramref name="windows"/>.
    /// Vector selects for the four windows at once; a NaN anywhere takes the bitwise path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WindowMaxima(Vector256<float> top, Vector256<float> bottom, byte[] windows, int index, int pairs)
    {
        Vector256<float> rows = Vector256.Max(top, bottom);
        Vector256<float> maxima = Vector256.Max(rows, Vector256.Shuffle(rows, Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6)));   // each window's maximum in both its lanes
        Vector256<int> topHits = Vector256.Equals(top, maxima).AsInt32(), bottomHits = Vector256.Equals(bottom, maxima).AsInt32();
        uint nans = (~Vector256.Equals(top, top) | ~Vector256.Equals(bottom, bottom)).ExtractMostSignificantBits();
        if (nans == 0)
        {
            // Even lanes (left column) to the low half, odd (right) to the high one; the first hit in row-major order wins.
            Vector256<int> split = Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7);
            Vector256<int> tops = Vector256.Shuffle(topHits, split), bottoms = Vector256.Shuffle(bottomHits, split);
            Vector128<int> winner = Vector128.ConditionalSelect(bottoms.GetLower(), Vector128.Create(2), Vector128.Create(3));
            winner = Vector128.ConditionalSelect(tops.GetUpper(), Vector128.Create(1), winner);
            winner = Vector128.ConditionalSelect(tops.GetLower(), Vector128<int>.Zero, winner);
            uint packed = Vector128.Shuffle(winner.AsByte(), Vector128.Create((byte)0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).AsUInt32().ToScalar();
            for (int j = 0; j < pairs; j++, packed >>= 8)
            {
                windows[index + j] = (byte)packed;
            }

            return;
        }

        uint topBits = topHits.ExtractMostSignificantBits(), bottomBits = bottomHits.ExtractMostSignificantBits();
        uint topNaN = (~Vector256.Equals(top, top)).ExtractMostSignificantBits(), bottomNaN = (~Vector256.Equals(bottom, bottom)).ExtractMostSignificantBits();
        for (int j = 0; j < pairs; j++)
        {
            // Bits 0-3: top left, top right, bottom left, bottom right; a NaN maximum equals nothing, so its NaNs decide.
            uint hits = ((topBits >> (2 * j)) & 3) | (((bottomBits >> (2 * j)) & 3) << 2);
            uint nan = ((topNaN >> (2 * j)) & 3) | (((bottomNaN >> (2 * j)) & 3) << 2);
            windows[index + j] = (byte)BitOperations.TrailingZeroCount((nan != 0 ? nan : hits) | 16);
        }
    }

    private static Vector256<float> Start(float[]? bias, int channel) => Vector256.Create(bias is null ? 0f : bias[channel]);
}
