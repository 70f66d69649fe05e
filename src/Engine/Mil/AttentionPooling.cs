using System.Buffers.Binary;

namespace SlidePlugin.Engine.Mil;

/// <summary>
/// Attention pooling M = Σₖ softmax(z)ₖ hₖ computed batch by batch, as an online softmax: per attention branch the running
/// maximum m of the scores, the normaliser s = Σ exp(zₖ − m) and the weighted sum W = Σ exp(zₖ − m) hₖ, rescaled whenever
/// m grows. A slide's embeddings are then never held or stored: the state is B·(L + 2) numbers, committed with each batch,
/// and M = W / s at the end. In double: on 10⁵ tiles single precision would lose the small weights. B is 1, or K for
/// CLAM-MB (one branch per class, all pooling the same embeddings).
/// </summary>
public sealed class AttentionPooling
{
    private readonly double[] _max;
    private readonly double[] _normaliser;
    private readonly double[] _weighted;

    /// <summary>An empty pool for embeddings of <paramref name="embeddingSize"/> (L) values and <paramref name="branches"/> (B) branches.</summary>
    public AttentionPooling(int embeddingSize, int branches = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(embeddingSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(branches, 1);
        EmbeddingSize = embeddingSize;
        _max = [.. Enumerable.Repeat(double.NegativeInfinity, branches)];
        _normaliser = new double[branches];
        _weighted = new double[branches * embeddingSize];
    }

    /// <summary>L: the embedding size.</summary>
    public int EmbeddingSize { get; }

    /// <summary>B: attention branches.</summary>
    public int Branches => _max.Length;

    /// <summary>Instances pooled so far.</summary>
    public long Count { get; private set; }

    /// <summary>
    /// Adds a batch: <paramref name="scores"/> [N, B] raw attention scores and <paramref name="embeddings"/> [N, L], row-major.
    /// </summary>
    public void Add(ReadOnlySpan<float> scores, ReadOnlySpan<float> embeddings)
    {
        int l = EmbeddingSize, branches = Branches;
        if (scores.Length % branches != 0 || embeddings.Length != scores.Length / branches * l)
        {
            throw new ArgumentException($"{embeddings.Length} embedding values and {scores.Length} scores are not N embeddings of {l} with {branches} scores each.", nameof(embeddings));
        }

        int n = scores.Length / branches;
        foreach (float z in scores)
        {
            if (!float.IsFinite(z))
            {
                throw new ArgumentException($"Attention score {z} is not finite.", nameof(scores));
            }
        }

        for (int b = 0; b < branches && n > 0; b++)
        {
            double max = _max[b];
            for (int i = 0; i < n; i++)
            {
                max = Math.Max(max, scores[(i * branches) + b]);
            }

            Span<double> weighted = _weighted.AsSpan(b * l, l);
            if (max > _max[b] && Count > 0)
            {
                double rescale = Math.Exp(_max[b] - max);
                _normaliser[b] *= rescale;
                for (int j = 0; j < l; j++)
                {
                    weighted[j] *= rescale;
                }
            }

            _max[b] = max;
            for (int i = 0; i < n; i++)
            {
                double weight = Math.Exp(scores[(i * branches) + b] - max);
                _normaliser[b] += weight;
                ReadOnlySpan<float> h = embeddings.Slice(i * l, l);
                for (int j = 0; j < l; j++)
                {
                    weighted[j] += weight * h[j];
                }
            }
        }

        Count += n;
    }

    /// <summary>M = W / s: [B, L] the pooled embeddings, row-major.</summary>
    public float[] Pooled()
    {
        if (Count == 0)
        {
            throw new InvalidOperationException("No instance was pooled.");
        }

        var pooled = new float[_weighted.Length];
        for (int j = 0; j < pooled.Length; j++)
        {
            pooled[j] = (float)(_weighted[j] / _normaliser[j / EmbeddingSize]);
        }

        return pooled;
    }

    /// <summary>The attention weight in <paramref name="branch"/> of an instance with raw score <paramref name="score"/>: exp(z − m) / s.</summary>
    public double AttentionOf(float score, int branch = 0) => Math.Exp(score - _max[branch]) / _normaliser[branch];

    /// <summary>The state as bytes, little-endian: B, count, then per branch m and s, then W.</summary>
    public byte[] ToBytes()
    {
        int branches = Branches;
        var bytes = new byte[(2 + (2 * branches) + _weighted.Length) * sizeof(double)];
        Span<byte> span = bytes;
        BinaryPrimitives.WriteInt64LittleEndian(span, branches);
        BinaryPrimitives.WriteInt64LittleEndian(span[8..], Count);
        int offset = 16;
        foreach (double value in _max.Concat(_normaliser).Concat(_weighted))
        {
            BinaryPrimitives.WriteDoubleLittleEndian(span[offset..], value);
            offset += sizeof(double);
        }

        return bytes;
    }

    /// <summary>The state <see cref="ToBytes"/> wrote, for embeddings of <paramref name="embeddingSize"/> and <paramref name="branches"/> branches.</summary>
    /// <exception cref="FormatException">The bytes are not a state of that shape.</exception>
    public static AttentionPooling FromBytes(ReadOnlySpan<byte> bytes, int embeddingSize, int branches = 1)
    {
        if (bytes.Length != (2 + (2 * branches) + (branches * embeddingSize)) * sizeof(double) || BinaryPrimitives.ReadInt64LittleEndian(bytes) != branches)
        {
            throw new FormatException($"{bytes.Length} bytes are not a pooling state of {branches} branches of embeddings of {embeddingSize}.");
        }

        var pooling = new AttentionPooling(embeddingSize, branches) { Count = BinaryPrimitives.ReadInt64LittleEndian(bytes[8..]) };
        int offset = 16;
        foreach (double[] values in new[] { pooling._max, pooling._normaliser, pooling._weighted })
        {
            for (int i = 0; i < values.Length; i++, offset += sizeof(double))
            {
                values[i] = BinaryPrimitives.ReadDoubleLittleEndian(bytes[offset..]);
            }
        }

        return pooling;
    }
}
