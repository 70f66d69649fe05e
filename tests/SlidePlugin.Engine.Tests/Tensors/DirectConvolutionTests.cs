using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Tests.Tensors;

/// <summary>The direct convolution kernel against a plain double-precision loop, on the A-MIL shapes and awkward edges.</summary>
public sealed class DirectConvolutionTests
{
    [Theory]
    [InlineData(3, 3, 28, 28, 20, 5, 0, true)]     // Ilse's first convolution (28x28 RGB patches)
    [InlineData(2, 20, 12, 12, 50, 5, 0, true)]    // the second
    [InlineData(2, 3, 32, 32, 20, 5, 0, false)]    // UCSB's 32x32 patches: 28 output columns, a partial last vector
    [InlineData(1, 2, 13, 9, 10, 3, 2, true)]      // odd output height, padding, 11 columns
    [InlineData(1, 4, 7, 40, 5, 5, 1, true)]       // a 38-column output: five vectors, the last with 6 columns
    public void Forward_Shapes_MatchesAPlainLoopInDoublePrecision(int n, int c, int h, int w, int o, int k, int padding, bool withBias)
    {
        var random = new Random(n + c + h + w + o);
        float[] x = [.. Enumerable.Range(0, n * c * h * w).Select(_ => (float)((random.NextDouble() * 2) - 1))];
        float[] weight = [.. Enumerable.Range(0, o * c * k * k).Select(_ => (float)((random.NextDouble() * 2) - 1))];
        float[]? bias = withBias ? [.. Enumerable.Range(0, o).Select(_ => (float)random.NextDouble())] : null;
        using Tensor input = Tensor.FromData(x, n, c, h, w), kernel = Tensor.FromData(weight, o, c, k, k);
        ConvGeometry g = ConvGeometry.Create(input, kernel, 1, padding);
        var actual = new float[n * o * g.OutHeight * g.OutWidth];

        Assert.True(DirectConvolution.Supports(g));
        DirectConvolution.Forward(x, n, weight, bias, actual, g);

        for (int image = 0; image < n; image++)
        {
            for (int oc = 0; oc < o; oc++)
            {
                for (int y = 0; y < g.OutHeight; y++)
                {
                    for (int xo = 0; xo < g.OutWidth; xo++)
                    {
                        double sum = bias?[oc] ?? 0;
                        for (int ic = 0; ic < c; ic++)
                        {
                            for (int i = 0; i < k; i++)
                            {
                                for (int j = 0; j < k; j++)
                                {
                                    int sy = y + i - padding, sx = xo + j - padding;
                                    if (sy >= 0 && sx >= 0 && sy < h && sx < w)
                                    {
                                        sum += (double)x[(((image * c) + ic) * h * w) + (sy * w) + sx] * weight[(((oc * c) + ic) * k * k) + (i * k) + j];
                                    }
                                }
                            }
                        }

                        float got = actual[(((image * o) + oc) * g.OutHeight * g.OutWidth) + (y * g.OutWidth) + xo];
                        Assert.True(Math.Abs(got - sum) <= 1e-4 * (1 + Math.Abs(sum)), $"[{image}, {oc}, {y}, {xo}]: {got} vs {sum}");
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(3, 3, 28, 28, 20)]    // Ilse's first stage
    [InlineData(2, 20, 12, 12, 50)]   // the second
    [InlineData(2, 3, 32, 32, 20)]    // UCSB: 28 columns, a partial last vector
    [InlineData(1, 2, 14, 15, 10)]    // odd output width and height: the last column and row are dropped, as PyTorch's floor mode
    [InlineData(1, 4, 7, 42, 5)]      // 38 columns: 19 pairs over five vectors
    public void Conv2dMaxPoolRelu_NoGrad_SameValuesAsTheThreeOperations(int n, int c, int h, int w, int o)
    {
        var random = new TensorRandom((ulong)(n + c + h + w + o));
        using Tensor x = Tensor.Empty(n, c, h, w), weight = Tensor.Empty(o, c, 5, 5), bias = Tensor.Empty(o);
        random.FillUniform(x.Data, -1f, 1f);
        random.FillUniform(weight.Data, -0.3f, 0.3f);
        random.FillUniform(bias.Data, -0.5f, 0.5f);
        using GradMode.NoGradScope noGrad = GradMode.NoGrad();

        using Tensor fused = Functional.Conv2dMaxPoolRelu(x, weight, bias);
        using Tensor convolved = Functional.Conv2d(x, weight, bias);
        using Tensor pooled = Functional.MaxPool2d(convolved, 2);
        using Tensor expected = Functional.Relu(pooled);

        Assert.Equal(expected.Shape, fused.Shape);
        Assert.Equal(expected.ToArray(), fused.ToArray());
    }

    [Theory]
    [InlineData(24, 3, 28, 28, 20, 5, 0)]     // Ilse's first convolution, one chunk of the training bag
    [InlineData(40, 1, 12, 12, 20, 5, 0)]     // grey 12x12 images: groups of 8 images, sums carried between them
    [InlineData(3, 3, 32, 32, 20, 5, 0)]      // UCSB: 28-column rows
    [InlineData(2, 4, 9, 11, 10, 5, 2)]       // padding 2 (the FCN's convolutions), runs not a whole number of vectors
    [InlineData(1, 2, 6, 5, 5, 3, 1)]         // a 3-row kernel, one output column past the input's width
    public void WeightGradient_Shapes_MatchesAPlainLoopInDoublePrecision(int n, int c, int h, int w, int o, int kh, int padding)
    {
        var random = new Random(n + c + h + w + o + kh);
        float[] x = [.. Enumerable.Range(0, (n + 1) * c * h * w).Select(_ => (float)((random.NextDouble() * 2) - 1))];
        using Tensor input = Tensor.Zeros(n, c, h, w), kernel = Tensor.Zeros(o, c, kh, 5);
        ConvGeometry g = ConvGeometry.Create(input, kernel, 1, padding);
        float[] gradient = [.. Enumerable.Range(0, o * n * g.Positions).Select(_ => (float)((random.NextDouble() * 2) - 1))];   // [O, n·P]
        float[] actual = [.. Enumerable.Repeat(float.NaN, o * g.Patch)];   // overwritten, not added to

        // Without AVX-512 the engine never takes this path (backward uses im2col + GEMM, tested against PyTorch).
        Assert.Equal(System.Runtime.Intrinsics.X86.Avx512F.IsSupported, DirectConvolution.SupportsWeightGradient(g));
        if (!DirectConvolution.SupportsWeightGradient(g))
        {
            return;
        }

        DirectConvolution.WeightGradient(x, 1, n, gradient, actual, g);   // images 1..n: the first image is not part of the chunk

        for (int oc = 0; oc < o; oc++)
        {
            for (int ic = 0; ic < c; ic++)
            {
                for (int i = 0; i < kh; i++)
                {
                    for (int j = 0; j < 5; j++)
                    {
                        double sum = 0, magnitude = 0;
                        for (int image = 0; image < n; image++)
                        {
                            for (int y = 0; y < g.OutHeight; y++)
                            {
                                for (int xo = 0; xo < g.OutWidth; xo++)
                                {
                                    int sy = y + i - padding, sx = xo + j - padding;
                                    if (sy >= 0 && sx >= 0 && sy < h && sx < w)
                                    {
                                        double term = (double)gradient[(oc * n * g.Positions) + (image * g.Positions) + (y * g.OutWidth) + xo]
                                            * x[((((1 + image) * c) + ic) * h * w) + (sy * w) + sx];
                                        sum += term;
                                        magnitude += Math.Abs(term);
                                    }
                                }
                            }
                        }

                        float got = actual[(oc * g.Patch) + (((ic * kh) + i) * 5) + j];
                        Assert.True(Math.Abs(got - sum) <= 1e-5 * (1 + magnitude), $"dW[{oc}, {ic}, {i}, {j}]: {got} vs {sum}");
                    }
                }
            }
        }
    }

    [Fact]
    public void WeightGradient_BuffersShortOrGeometryUnsupported_ArgumentExceptionBeforeAnyWork()
    {
        using Tensor input = Tensor.Zeros(2, 3, 12, 12), kernel = Tensor.Zeros(5, 3, 5, 5), deep = Tensor.Zeros(2, 20, 12, 12), wide = Tensor.Zeros(5, 20, 5, 5);
        ConvGeometry g = ConvGeometry.Create(input, kernel, 1, 0);
        var images = new float[2 * 3 * 12 * 12];
        var gradient = new float[5 * 2 * g.Positions];
        var partial = new float[5 * g.Patch];

        Assert.Throws<ArgumentException>(() => DirectConvolution.WeightGradient(images, 1, 2, gradient, partial, g));                     // images 1..2 of 2
        Assert.Throws<ArgumentException>(() => DirectConvolution.WeightGradient(images, 0, 2, gradient[..^1], partial, g));               // gradient short
        Assert.Throws<ArgumentException>(() => DirectConvolution.WeightGradient(images, 0, 2, gradient, partial[..^1], g));               // weights short
        Assert.Throws<ArgumentException>(() => DirectConvolution.WeightGradient(new float[2 * 20 * 144], 0, 2, gradient, new float[5 * 500],
            ConvGeometry.Create(deep, wide, 1, 0)));                                                                                      // a 500-tap patch
        if (DirectConvolution.SupportsWeightGradient(g))   // AVX-512; elsewhere every call is refused, as above
        {
            DirectConvolution.WeightGradient(images, 0, 2, gradient, partial, g);                                                        // exactly enough
        }
    }

    [Theory]
    [InlineData(3, 3, 28, 28, 20)]    // Ilse's first stage
    [InlineData(9, 20, 12, 12, 50)]   // the second, over three chunks
    [InlineData(2, 3, 32, 32, 20)]    // UCSB: 28 columns, a partial last vector
    [InlineData(1, 2, 14, 15, 10)]    // odd output width and height: the last column and row get no gradient
    [InlineData(1, 4, 7, 42, 5)]      // 38 columns: 19 windows a row, a tail of 3
    public void Conv2dMaxPoolRelu_Training_SameValuesAndGradientsAsTheThreeOperations(int n, int c, int h, int w, int o)
    {
        var random = new TensorRandom((ulong)(n + c + h + w + o));
        float[] x = new float[n * c * h * w], weight = new float[o * c * 25], bias = new float[o];
        random.FillUniform(x, -1f, 1f);
        random.FillUniform(weight, -0.3f, 0.3f);
        random.FillUniform(bias, -0.5f, 0.5f);
        for (int k = 0; k < x.Length; k += 7)
        {
            x[k] = 0.25f;   // repeated inputs make tied maxima, where the first in row-major order must take the gradient
        }

        Array.Clear(weight, 0, c * 25);   // channel 0 sees only its bias: every window of it a tie
        (float[] Output, float[] X, float[] Weight, float[] Bias) Run(Func<Tensor, Tensor, Tensor, Tensor> stage)
        {
            using Tensor input = Tensor.FromData(x, n, c, h, w), kernel = Tensor.FromData(weight, o, c, 5, 5), shift = Tensor.FromData(bias, o);
            input.RequiresGrad = kernel.RequiresGrad = shift.RequiresGrad = true;
            Tensor y = stage(input, kernel, shift);
            float[] output = y.ToArray();
            float[] upstream = [.. Enumerable.Range(0, y.Length).Select(k => (float)Math.Sin(k))];
            using Tensor gradient = Tensor.FromData(upstream, [.. y.Shape]);
            y.Backward(gradient);
            return (output, input.Grad!.ToArray(), kernel.Grad!.ToArray(), shift.Grad!.ToArray());
        }

        var fused = Run((input, kernel, shift) => Functional.Conv2dMaxPoolRelu(input, kernel, shift));
        var separate = Run((input, kernel, shift) => Functional.Relu(Functional.MaxPool2d(Functional.Conv2d(input, kernel, shift), 2)));

        Assert.Equal(separate.Output, fused.Output);
        Assert.Equal(separate.X, fused.X);
        Assert.Equal(separate.Weight, fused.Weight);
        Assert.Equal(separate.Bias, fused.Bias);
        Assert.Contains(fused.Output, v => v == 0f);   // ReLU blocked some gradients
        Assert.Contains(fused.Weight, v => v != 0f);
    }

    [Fact]
    public void Forward_PoolReluWindows_EveryTiePatternAndNaN_FirstMaximumInRowMajorOrder()
    {
        // A centre-tap kernel copies the input (shifted by 2), so the first row of windows holds all 16 patterns of 0 and
        // 1 (ties of 2, 3 and 4 included); NaNs in the last row spread over their 5x5 neighbourhoods (0 · NaN is NaN),
        // making windows with one to four NaNs. The expected winner comes from the unpooled convolution.
        const int outHeight = 6, outWidth = 32, height = outHeight + 4, width = outWidth + 4;
        var image = new float[height * width];
        for (int window = 0; window < 16; window++)
        {
            for (int k = 0; k < 4; k++)
            {
                image[(((k / 2) + 2) * width) + (2 * window) + (k % 2) + 2] = (window >> k) & 1;
            }
        }

        image[(7 * width) + 9] = image[(6 * width) + 20] = image[(7 * width) + 31] = float.NaN;
        var weights = new float[5 * 25];
        for (int o = 0; o < 5; o++)
        {
            weights[(o * 25) + 12] = 1f;   // the centre tap of each of the five output channels
        }

        using Tensor input = Tensor.Zeros(1, 1, height, width), kernel = Tensor.Zeros(5, 1, 5, 5);
        ConvGeometry g = ConvGeometry.Create(input, kernel, 1, 0);
        var convolved = new float[5 * outHeight * outWidth];
        DirectConvolution.Forward(image, 1, weights, null, convolved, g);
        var expected = new List<byte>();
        for (int window = 0; window < (outHeight / 2) * (outWidth / 2); window++)
        {
            int row = 2 * (window / (outWidth / 2)), column = 2 * (window % (outWidth / 2));
            float[] values = [.. Enumerable.Range(0, 4).Select(k => convolved[((row + (k / 2)) * outWidth) + column + (k % 2)])];
            int first = Array.FindIndex(values, float.IsNaN);
            expected.Add((byte)(first >= 0 ? first : Array.IndexOf(values, values.Max())));
        }

        var pooled = new float[5 * expected.Count];
        var windows = new byte[5 * expected.Count];
        DirectConvolution.Forward(image, 1, weights, null, pooled, g, poolRelu: true, windows);

        Assert.Equal([0, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0], expected.Take(16));   // the tie patterns are there
        Assert.Contains(expected.Skip(16), w => w != 0);   // and NaNs that are not first in their window
        for (int o = 0; o < 5; o++)
        {
            Assert.Equal(expected, windows.AsSpan(o * expected.Count, expected.Count).ToArray());
        }
    }

    [Theory]
    [InlineData(3, 3, 28, 28, 20)]    // 24 columns: a 16-column pass (512-bit where available) and an 8-column one
    [InlineData(2, 3, 32, 32, 20)]    // UCSB: 28 columns, two 16-column passes, the last overhanging the row
    [InlineData(2, 20, 14, 14, 50)]   // UCSB's second stage: 10 columns, one 16-column pass
    [InlineData(2, 20, 12, 12, 50)]   // 8 columns: one 8-column pass
    public void Forward_AnyVectorWidth_ExactlyTheScalarSumInTapOrder(int n, int c, int h, int w, int o)
    {
        var random = new TensorRandom((ulong)(n * c * h * w * o));
        float[] x = new float[n * c * h * w], weight = new float[o * c * 25], bias = new float[o];
        random.FillUniform(x, -1f, 1f);
        random.FillUniform(weight, -0.3f, 0.3f);
        random.FillUniform(bias, -0.5f, 0.5f);
        using Tensor input = Tensor.Zeros(n, c, h, w), kernel = Tensor.Zeros(o, c, 5, 5);
        ConvGeometry g = ConvGeometry.Create(input, kernel, 1, 0);
        var direct = new float[n * o * g.Positions];
        DirectConvolution.Forward(x, n, weight, bias, direct, g);

        // Each output lane, whatever the vector width, is this float32 sum: fused multiply-adds over the taps in
        // (channel, row, column) order from zero, then the bias. Equal bits, not a tolerance.
        for (int image = 0; image < n; image++)
        {
            for (int oc = 0; oc < o; oc++)
            {
                for (int y = 0; y < g.OutHeight; y++)
                {
                    for (int xo = 0; xo < g.OutWidth; xo++)
                    {
                        float sum = 0f;
                        for (int ic = 0; ic < c; ic++)
                        {
                            for (int i = 0; i < 5; i++)
                            {
                                for (int j = 0; j < 5; j++)
                                {
                                    sum = MathF.FusedMultiplyAdd(x[((((image * c) + ic) * h) + y + i) * w + xo + j], weight[(((oc * c) + ic) * 25) + (i * 5) + j], sum);
                                }
                            }
                        }

                        Assert.Equal(sum + bias[oc], direct[(((image * o) + oc) * g.Positions) + (y * g.OutWidth) + xo]);
                    }
                }
            }
        }
    }
}
