namespace SlidePlugin.Engine.Tensors;

/// <summary>Loss functions.</summary>
public static partial class Functional
{
    /// <summary>The clamp of Ilse et al.'s reference code: probabilities are kept in [1e-5, 1 − 1e-5] before the log.</summary>
    public const float AttentionMilProbabilityClamp = 1e-5f;

    /// <summary>
    /// Binary cross-entropy on probabilities, averaged over elements: −(y·log p + (1 − y)·log(1 − p)) with p first
    /// clamped to [<paramref name="clamp"/>, 1 − <paramref name="clamp"/>], as Ilse et al.'s
    /// <c>calculate_objective</c>. Like <c>torch.clamp</c>, the gradient is zero where p was clamped.
    /// probabilities and targets: same shape; result: [].
    /// </summary>
    public static Tensor BinaryCrossEntropy(Tensor probabilities, Tensor targets, float clamp = AttentionMilProbabilityClamp)
    {
        RequireSameShape(probabilities, targets, "binary_cross_entropy");
        ArgumentOutOfRangeException.ThrowIfNegative(clamp);
        ReadOnlySpan<float> p = probabilities.Data, t = targets.Data;
        double total = 0;
        for (int i = 0; i < p.Length; i++)
        {
            float c = Math.Clamp(p[i], clamp, 1f - clamp);
            total -= (t[i] * MathF.Log(c)) + ((1f - t[i]) * MathF.Log(1f - c));
        }

        int count = p.Length;
        Tensor loss = Tensor.Scalar((float)(total / count));
        if (Autograd.ShouldRecord(probabilities))
        {
            Autograd.Record("binary_cross_entropy", loss, [probabilities], gy =>
            {
                Span<float> gp = probabilities.GradData();
                ReadOnlySpan<float> pData = probabilities.Data, tData = targets.Data;
                float scale = gy.Data[0] / count;
                for (int i = 0; i < gp.Length; i++)
                {
                    float value = pData[i];
                    if (value >= clamp && value <= 1f - clamp)
                    {
                        gp[i] -= scale * ((tData[i] / value) - ((1f - tData[i]) / (1f - value)));
                    }
                }
            });
        }

        return loss;
    }

    /// <summary>
    /// Cross-entropy of logits against class indices, averaged over the batch, as <c>torch.nn.functional.cross_entropy</c>.
    /// logits: [N, K]; targets: N indices in [0, K); result: [].
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, IReadOnlyList<int> targets)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        if (logits.Rank != 2 || logits.Shape[0] != targets.Count)
        {
            throw new ArgumentException($"cross_entropy: logits {Tensor.ShapeText(logits.Shape)} must be [N, K] with N = {targets.Count} targets.");
        }

        int n = logits.Shape[0], k = logits.Shape[1];
        int[] classes = targets.ToArray();
        foreach (int target in classes)
        {
            if (target < 0 || target >= k)
            {
                throw new ArgumentOutOfRangeException(nameof(targets), target, $"cross_entropy: class index outside [0, {k}).");
            }
        }

        Tensor logProbabilities = LogSoftmax(logits, 1);   // [N, K]; kept by the graph when recorded
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            total -= logProbabilities.Data[(i * k) + classes[i]];
        }

        Tensor loss = Tensor.Scalar((float)(total / n));
        if (Autograd.ShouldRecord(logProbabilities))
        {
            Autograd.Record("nll_loss", loss, [logProbabilities], gy =>
            {
                Span<float> g = logProbabilities.GradData();
                for (int i = 0; i < n; i++)
                {
                    g[(i * k) + classes[i]] -= gy.Data[0] / n;
                }
            });
        }
        else
        {
            logProbabilities.Dispose();
        }

        return loss;
    }
}
