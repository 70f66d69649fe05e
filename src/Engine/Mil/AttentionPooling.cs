using System.Buffers.Binary;

namespace SlidePlugin.Engine.Mil;

/// <summary>
/// Attention pooling M = Σₖ softmax(z)ₖ hₖ computed batch by batch, as an online softmax: the running maximum m of the
/// scores, the normaliser s = Σ exp(zₖ − m) and the weighted sum W = Σ exp(zₖ − m) hₖ, rescaled whenever m grows. A
/// slide's embeddings are then never held or stored: the state is L + 2 numbers, committed with each batch, and
/// M = W / s at the end. In double: on 10⁵ tiles single precision would lose the small weights.
/// </summary>
public sealed class AttentionPooling
{
    private readonly double[] _weighted;

    /// <summary>An empty pool for embeddings of <paramref name="embeddingSize"/> (L) values.</summary>
    public AttentionPooling(int embeddingSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(embeddingSize, 1);
        _weighted = new double[embeddingSize];
        Max = double.NegativeInfinity;
    }

    private AttentionPooling(double max, double normaliser, long count, double[] weighted)
    {
        Max = max;
        Normaliser = normaliser;
        Count = count;
        _weighted = weighted;
    }

    /// <summary>L: the embedding size.</summary>
    public int EmbeddingSize => _weighted.Length;

    /// <summary>m: the largest score so far (−∞ when empty).</summary>
    public double Max { get; private set; }

    /// <summary>s = Σ exp(zₖ − m).</summary>
    public double Normaliser { get; private set; }

    /// <summary>Instances pooled so far.</summary>
    public long Count { get; private set; }

    /// <summary>
    /// Adds a batch: <paramref name="scores"/> [B] raw attention scores and <paramref name="embeddings"/> [B, L] row-major.
    /// </summary>
    public void Add(ReadOnlySpan<float> scores, ReadOnlySpan<float> embeddings)
    {
        int l = _weighted.Length;
        if (embeddings.Length != scores.Length * l)
        {
            throw new ArgumentException($"{embeddings.Length} embedding values for {scores.Length} scores of embeddings of {l}.", nameof(embeddings));
        }

        if (scores.IsEmpty)
        {
            return;
        }

        double max = Max;
        foreach (float z in scores)
        {
            if (!float.IsFinite(z))
            {
                throw new ArgumentException($"Attention score {z} is not finite.", nameof(scores));
            }

            max = Math.Max(max, z);
        }

        if (max > Max && Count > 0)
        {
            double rescale = Math.Exp(Max - max);
            Normaliser *= rescale;
            for (int j = 0; j < l; j++)
            {
                _weighted[j] *= rescale;
            }
        }

        Max = max;
        for (int i = 0; i < scores.Length; i++)
        {
            double weight = Math.Exp(scores[i] - max);
            Normaliser += weight;
            ReadOnlySpan<float> h = embeddings.Slice(i * l, l);
            for (int j = 0; j < l; j++)
            {
                _weighted[j] += weight * h[j];
            }
        }

        Count += scores.Length;
    }

    /// <summary>M = W / s: [L] the pooled embedding.</summary>
    public float[] Pooled()
    {
        if (Count == 0)
        {
            throw new InvalidOperationException("No instance was pooled.");
        }

        var pooled = new float[_weighted.Length];
        for (int j = 0; j < pooled.Length; j++)
        {
            pooled[j] = (float)(_weighted[j] / Normaliser);
        }

        return pooled;
    }

    /// <summary>The attention weight of an instance with raw score <paramref name="score"/>: exp(z − m) / s.</summary>
    public double AttentionOf(float score) => Math.Exp(score - Max) / Normaliser;

    /// <summary>A copy (the state to commit while this one keeps running).</summary>
    public AttentionPooling Clone() => new(Max, Normaliser, Count, (double[])_weighted.Clone());

    /// <summary>The state as bytes: m, s, count, then W, little-endian.</summary>
    public byte[] ToBytes()
    {
        var bytes = new byte[(3 + _weighted.Length) * sizeof(double)];
        Span<byte> span = bytes;
        BinaryPrimitives.WriteDoubleLittleEndian(span, Max);
        BinaryPrimitives.WriteDoubleLittleEndian(span[8..], Normaliser);
        BinaryPrimitives.WriteInt64LittleEndian(span[16..], Count);
        for (int j = 0; j < _weighted.Length; j++)
        {
            BinaryPrimitives.WriteDoubleLittleEndian(span[((3 + j) * sizeof(double))..], _weighted[j]);
        }

        return bytes;
    }

    /// <summary>The state <see cref="ToBytes"/> wrote, for embeddings of <paramref name="embeddingSize"/>.</summary>
    /// <exception cref="FormatException">The bytes are not a state of that size.</exception>
    public static AttentionPooling FromBytes(ReadOnlySpan<byte> bytes, int embeddingSize)
    {
        if (bytes.Length != (3 + embeddingSize) * sizeof(double))
        {
            throw new FormatException($"{bytes.Length} bytes are not a pooling state of embeddings of {embeddingSize}.");
        }

        var weighted = new double[embeddingSize];
        for (int j = 0; j < embeddingSize; j++)
        {
            weighted[j] = BinaryPrimitives.ReadDoubleLittleEndian(bytes[((3 + j) * sizeof(double))..]);
        }

        return new AttentionPooling(BinaryPrimitives.ReadDoubleLittleEndian(bytes), BinaryPrimitives.ReadDoubleLittleEndian(bytes[8..]),
            BinaryPrimitives.ReadInt64LittleEndian(bytes[16..]), weighted);
    }
}
