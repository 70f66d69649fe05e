using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
internal static partial class DirectConvolution
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
        int taps = channels * kh * kw, pooledHeight = g.OutHeight / 2;
        // Where 512-bit vectors are fast, two 8-column vectors at a time: each lane sums the same taps in the same order,
        // so the results are the same bits; conv1's 24-column rows take 2 passes instead of 3, UCSB's 28 take 2 instead of 4.
        bool wide = Vector512.IsHardwareAccelerated;
        fixed (float* input = padded)
        fixed (float* weightBase = blocked)
        fixed (float* result = output)
        fixed (float* stage = rows)
        {
            var target = new Target(result, stage, windows, g, n, poolRelu);
            for (int block = 0; block < g.OutChannels / ChannelBlock; block++)
            {
                float* w0 = weightBase + (block * taps * ChannelBlock);
                Vector256<float> b0 = Start(bias, (block * ChannelBlock) + 0), b1 = Start(bias, (block * ChannelBlock) + 1), b2 = Start(bias, (block * ChannelBlock) + 2);
                Vector256<float> b3 = Start(bias, (block * ChannelBlock) + 3), b4 = Start(bias, (block * ChannelBlock) + 4);
                for (int y = 0; y < (poolRelu ? pooledHeight * 2 : g.OutHeight); y += 2)
                {
                    int v = 0;
                    for (; wide && v + 1 < vectors; v += 2)
                    {
                        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default;   // row y
                        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default;   // row y + 1
                        float* w = w0;
                        for (int c = 0; c < channels; c++)
                        {
                            float* source = input + (c * plane) + (y * paddedWidth) + (v * 8);
                            for (int i = 0; i < kh; i++)
                            {
                                float* top = source + (i * paddedWidth), below = top + paddedWidth;
                                for (int j = 0; j < kw; j++, w += ChannelBlock)
                                {
                                    Vector512<float> x0 = Vector512.Load(top + j), x1 = Vector512.Load(below + j);
                                    Vector512<float> k = Vector512.Create(w[0]);
                                    a0 = Vector512.FusedMultiplyAdd(x0, k, a0);
                                    c0 = Vector512.FusedMultiplyAdd(x1, k, c0);
                                    k = Vector512.Create(w[1]);
                                    a1 = Vector512.FusedMultiplyAdd(x0, k, a1);
                                    c1 = Vector512.FusedMultiplyAdd(x1, k, c1);
                                    k = Vector512.Create(w[2]);
                                    a2 = Vector512.FusedMultiplyAdd(x0, k, a2);
                                    c2 = Vector512.FusedMultiplyAdd(x1, k, c2);
                                    k = Vector512.Create(w[3]);
                                    a3 = Vector512.FusedMultiplyAdd(x0, k, a3);
                                    c3 = Vector512.FusedMultiplyAdd(x1, k, c3);
                                    k = Vector512.Create(w[4]);
                                    a4 = Vector512.FusedMultiplyAdd(x0, k, a4);
                                    c4 = Vector512.FusedMultiplyAdd(x1, k, c4);
                                }
                            }
                        }

                        var low = new RowPair(a0.GetLower(), a1.GetLower(), a2.GetLower(), a3.GetLower(), a4.GetLower(),
                            c0.GetLower(), c1.GetLower(), c2.GetLower(), c3.GetLower(), c4.GetLower());
                        var high = new RowPair(a0.GetUpper(), a1.GetUpper(), a2.GetUpper(), a3.GetUpper(), a4.GetUpper(),
                            c0.GetUpper(), c1.GetUpper(), c2.GetUpper(), c3.GetUpper(), c4.GetUpper());
                        target.Write(low.PlusBias(b0, b1, b2, b3, b4), block, y, v);
                        target.Write(high.PlusBias(b0, b1, b2, b3, b4), block, y, v + 1);
                    }

                    for (; v < vectors; v++)
                    {
                        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default;   // row y
                        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default;   // row y + 1
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

                        target.Write(new RowPair(a0, a1, a2, a3, a4, c0, c1, c2, c3, c4).PlusBias(b0, b1, b2, b3, b4), block, y, v);
                    }
                }
            }
        }
    }

    /// <summary>One 8-column vector's sums for the 5 channels of a block: A for row y, C for row y + 1.</summary>
    private readonly record struct RowPair(
        Vector256<float> A0, Vector256<float> A1, Vector256<float> A2, Vector256<float> A3, Vector256<float> A4,
        Vector256<float> C0, Vector256<float> C1, Vector256<float> C2, Vector256<float> C3, Vector256<float> C4)
    {
        /// <summary>The bias last, as im2col + GEMM adds it: the same rounding, so near-ties in a following max-pool fall the same way.</summary>
        public RowPair PlusBias(Vector256<float> b0, Vector256<float> b1, Vector256<float> b2, Vector256<float> b3, Vector256<float> b4) =>
            new(A0 + b0, A1 + b1, A2 + b2, A3 + b3, A4 + b4, C0 + b0, C1 + b1, C2 + b2, C3 + b3, C4 + b4);
    }

    /// <summary>Where one image's results go: the output (full or pooled), its staging rows, and the window winners when recorded.</summary>
    private readonly unsafe struct Target(float* result, float* stage, byte[]? windows, ConvGeometry g, int image, bool poolRelu)
    {
        /// <summary>Writes vector <paramref name="v"/> (columns 8v..8v + 7) of rows y and y + 1 for the block's 5 channels.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Write(in RowPair p, int block, int y, int v)
        {
            float* s = stage + (v * 8 * 2 * ChannelBlock);
            if (poolRelu)
            {
                // Rows y and y + 1 are one window row pair: vertical max, then each even column with its right neighbour, then ReLU.
                int pooledWidth = g.OutWidth / 2, pooledPlane = g.OutHeight / 2 * pooledWidth;
                PoolRelu(p.A0, p.C0).Store(s); PoolRelu(p.A1, p.C1).Store(s + 8); PoolRelu(p.A2, p.C2).Store(s + 16);
                PoolRelu(p.A3, p.C3).Store(s + 24); PoolRelu(p.A4, p.C4).Store(s + 32);
                int pairs = Math.Min(4, pooledWidth - (v * 4));
                int first = (((image * g.OutChannels) + (block * ChannelBlock)) * pooledPlane) + (y / 2 * pooledWidth) + (v * 4);
                for (int o = 0; o < ChannelBlock && pairs > 0; o++)
                {
                    new ReadOnlySpan<float>(s + (o * 8), pairs).CopyTo(new Span<float>(result + first + (o * pooledPlane), pairs));
                }

                if (windows is not null && pairs > 0)
                {
                    WindowMaxima(p.A0, p.C0, windows, first, pairs);
                    WindowMaxima(p.A1, p.C1, windows, first + pooledPlane, pairs);
                    WindowMaxima(p.A2, p.C2, windows, first + (2 * pooledPlane), pairs);
                    WindowMaxima(p.A3, p.C3, windows, first + (3 * pooledPlane), pairs);
                    WindowMaxima(p.A4, p.C4, windows, first + (4 * pooledPlane), pairs);
                }

                return;
            }

            // Stage the 5 x 2 vectors, then copy the columns that exist (the last vector may overhang the row).
            p.A0.Store(s); p.A1.Store(s + 8); p.A2.Store(s + 16); p.A3.Store(s + 24); p.A4.Store(s + 32);
            p.C0.Store(s + 40); p.C1.Store(s + 48); p.C2.Store(s + 56); p.C3.Store(s + 64); p.C4.Store(s + 72);
            int columns = Math.Min(8, g.OutWidth - (v * 8)), outPlane = g.OutHeight * g.OutWidth;
            for (int o = 0; o < ChannelBlock; o++)
            {
                float* target = result + ((((image * g.OutChannels) + (block * ChannelBlock) + o) * outPlane) + (y * g.OutWidth) + (v * 8));
                new ReadOnlySpan<float>(s + (o * 8), columns).CopyTo(new Span<float>(target, columns));
                if (y + 1 < g.OutHeight)
                {
                    new ReadOnlySpan<float>(s + 40 + (o * 8), columns).CopyTo(new Span<float>(target + g.OutWidth, columns));
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
