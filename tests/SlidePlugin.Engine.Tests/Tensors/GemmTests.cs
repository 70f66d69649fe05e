using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Tests.Tensors;

public sealed class GemmTests
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Multiply_OneTwoOrThreeThreads_SameBitsAndWithinFloat32RoundingOfFloat64(bool transposeA, bool transposeB)
    {
        // Large enough to be split, with sizes no kernel unroll divides: edge blocks are where kernels round differently.
        const int m = 389, n = 517, k = 203;
        var random = new TensorRandom(3);
        float[] a = new float[m * k], b = new float[k * n];
        random.FillNormal(a);
        random.FillNormal(b);
        Assert.True(Gemm.PartsFor(m, n, k) > 1, "the case must be split");
        int threads = EngineThreads.Count;
        try
        {
            float[][] products = new[] { 1, 2, 3 }.Select(t =>
            {
                EngineThreads.Set(t);
                var c = new float[m * n];
                Gemm.Multiply(transposeA, transposeB, m, n, k, a, b, c);
                return c;
            }).ToArray();
            Assert.Equal(products[0], products[1]);
            Assert.Equal(products[0], products[2]);

            // Against float64: each element within k units of float32 rounding of the sum of its terms' magnitudes.
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    double sum = 0, magnitude = 0;
                    for (int p = 0; p < k; p++)
                    {
                        double x = transposeA ? a[(p * m) + i] : a[(i * k) + p], y = transposeB ? b[(j * k) + p] : b[(p * n) + j];
                        sum += x * y;
                        magnitude += Math.Abs(x * y);
                    }

                    Assert.True(Math.Abs(products[0][(i * n) + j] - sum) <= k * Math.Pow(2, -24) * magnitude, $"C[{i},{j}]: {products[0][(i * n) + j]} vs {sum}");
                }
            }
        }
        finally
        {
            EngineThreads.Set(threads);
        }
    }
}
