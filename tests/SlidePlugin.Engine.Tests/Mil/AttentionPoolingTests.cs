using SlidePlugin.Engine.Mil;

namespace SlidePlugin.Engine.Tests.Mil;

/// <summary>Online attention pooling against the softmax written out in double over the whole bag.</summary>
public sealed class AttentionPoolingTests
{
    private const int L = 5;

    /// <summary>softmax(scores)ᵀ H in double, all at once.</summary>
    private static double[] WholeBag(float[] scores, float[] embeddings)
    {
        double max = scores.Max();
        double[] weights = [.. scores.Select(z => Math.Exp(z - max))];
        double total = weights.Sum();
        var pooled = new double[L];
        for (int i = 0; i < scores.Length; i++)
        {
            for (int j = 0; j < L; j++)
            {
                pooled[j] += weights[i] / total * embeddings[(i * L) + j];
            }
        }

        return pooled;
    }

    private static (float[] Scores, float[] Embeddings) Bag(int n, float scale, int seed)
    {
        var random = new Random(seed);
        return ([.. Enumerable.Range(0, n).Select(_ => (float)((random.NextDouble() - 0.5) * scale))],
                [.. Enumerable.Range(0, n * L).Select(_ => (float)random.NextDouble())]);
    }

    [Theory]
    [InlineData(1000, 1)]       // batches of one: the maximum moves often
    [InlineData(1000, 64)]
    [InlineData(1000, 1000)]    // the whole bag in one batch
    public void Add_InBatches_EqualsSoftmaxOverTheWholeBag(int n, int batch)
    {
        (float[] scores, float[] embeddings) = Bag(n, scale: 40, seed: n + batch);
        var pooling = new AttentionPooling(L);

        for (int start = 0; start < n; start += batch)
        {
            int count = Math.Min(batch, n - start);
            pooling.Add(scores.AsSpan(start, count), embeddings.AsSpan(start * L, count * L));
        }

        double[] expected = WholeBag(scores, embeddings);
        float[] pooled = pooling.Pooled();
        for (int j = 0; j < L; j++)
        {
            Assert.Equal(expected[j], pooled[j], 1e-6);
        }

        Assert.Equal(n, pooling.Count);
        Assert.Equal(1.0, scores.Sum(z => pooling.AttentionOf(z)), 1e-9);
    }

    [Fact]
    public void Add_ScoresFarApart_NoOverflowAndTheLargestDominates()
    {
        var pooling = new AttentionPooling(L);
        pooling.Add([-1000f], [1, 1, 1, 1, 1]);
        pooling.Add([1000f, 999f], [2, 2, 2, 2, 2, 3, 3, 3, 3, 3]);

        float[] pooled = pooling.Pooled();
        double expected = ((2 * 1) + (3 * Math.Exp(-1))) / (1 + Math.Exp(-1));
        Assert.All(pooled, v => Assert.Equal(expected, v, 1e-6));
        Assert.Equal(0.0, pooling.AttentionOf(-1000f));
    }

    [Fact]
    public void FromBytes_OfToBytes_ContinuesWithTheSameBits()
    {
        (float[] scores, float[] embeddings) = Bag(40, scale: 10, seed: 7);
        var running = new AttentionPooling(L);
        running.Add(scores.AsSpan(0, 20), embeddings.AsSpan(0, 20 * L));
        AttentionPooling resumed = AttentionPooling.FromBytes(running.ToBytes(), L);

        running.Add(scores.AsSpan(20), embeddings.AsSpan(20 * L));
        resumed.Add(scores.AsSpan(20), embeddings.AsSpan(20 * L));

        Assert.Equal(running.ToBytes(), resumed.ToBytes());
        Assert.Throws<FormatException>(() => AttentionPooling.FromBytes(running.ToBytes(), L + 1));
    }

    [Fact]
    public void Add_BadInput_ClearErrors()
    {
        var pooling = new AttentionPooling(L);

        Assert.Contains("not finite", Assert.Throws<ArgumentException>(() => pooling.Add([float.NaN], new float[L])).Message, StringComparison.Ordinal);
        Assert.Contains("4 embedding values and 1 scores are not N embeddings of 5", Assert.Throws<ArgumentException>(() => pooling.Add([1f], new float[4])).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(pooling.Pooled);
    }
}
