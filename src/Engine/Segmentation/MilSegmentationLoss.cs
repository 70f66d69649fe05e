using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Segmentation;

/// <summary>
/// Pathak et al.'s multi-class MIL loss on one image's score maps, from image-level tags only. For every class l in
/// the tag set L (background, class 0, always in it) take the pixel where p_l is largest and apply −log p_l there:
/// −(1/|L|) Σ_l log p_l(argmax p_l). Every absent class a is pushed down at its own maximum: + mean_a −log(1 − p_a(argmax p_a))
/// (clamped as <see cref="Functional.BinaryCrossEntropy"/>). p = softmax over the class maps at each pixel.
/// The argmax pixels are chosen on the values (no gradient), as torch.max's indices are.
/// </summary>
public static class MilSegmentationLoss
{
    /// <summary>The loss of one image. logits: [1, K, h, w]; <paramref name="present"/>: foreground classes tagged (1..K−1). Result: [].</summary>
    public static Tensor Compute(Tensor logits, IReadOnlyCollection<int> present)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(present);
        if (logits.Rank != 4 || logits.Shape[0] != 1)
        {
            throw new ArgumentException($"Logits [{string.Join(", ", logits.Shape)}] are not one image's [1, K, h, w].", nameof(logits));
        }

        int k = logits.Shape[1], pixels = logits.Shape[2] * logits.Shape[3];
        if (present.Any(c => c < 1 || c >= k))
        {
            throw new ArgumentOutOfRangeException(nameof(present), $"Tags are foreground classes 1..{k - 1}.");
        }

        int[] tagged = [0, .. present.Distinct().Order()];
        int[] absent = [.. Enumerable.Range(1, k - 1).Except(tagged)];
        Tensor logProbabilities = Functional.Reshape(Functional.LogSoftmax(logits, 1), k, pixels);         // [K, hw]
        Tensor presentTerm = Functional.Scale(SumAtMaxima(logProbabilities, tagged), -1f / tagged.Length); // []
        if (absent.Length == 0)
        {
            return presentTerm;
        }

        Tensor probabilities = Functional.Reshape(Functional.Softmax(logits, 1), k, pixels);               // [K, hw]
        Tensor atMaxima = ValuesAtMaxima(probabilities, absent);                                            // [|A|]
        Tensor zeros = Tensor.Empty(absent.Length);                                                       // kept by the graph for backward
        zeros.Data.Clear();
        Tensor absentTerm = Functional.BinaryCrossEntropy(atMaxima, zeros);                                // mean −log(1 − p)
        return Functional.Add(presentTerm, absentTerm);
    }

    /// <summary>Σ over <paramref name="classes"/> of maps[c, argmax maps[c, :]]. maps: [K, hw]; result: [].</summary>
    private static Tensor SumAtMaxima(Tensor maps, int[] classes) => Functional.Sum(ValuesAtMaxima(maps, classes));

    /// <summary>maps[c, argmax maps[c, :]] for each class, as a differentiable pick: (maps · S) ⊙ M summed over classes. Result: [n].</summary>
    private static Tensor ValuesAtMaxima(Tensor maps, int[] classes)
    {
        int k = maps.Shape[0], pixels = maps.Shape[1], n = classes.Length;
        // Constants of the graph (backward reads them), so not disposed here.
        Tensor selector = Tensor.Empty(pixels, n);   // S[j, i] = 1 at class i's argmax pixel
        Tensor rows = Tensor.Empty(k, n);            // M[c, i] = 1 where c is class i
        selector.Data.Clear();
        rows.Data.Clear();
        ReadOnlySpan<float> values = maps.Data;
        for (int i = 0; i < n; i++)
        {
            int c = classes[i], best = 0;
            ReadOnlySpan<float> map = values.Slice(c * pixels, pixels);
            for (int j = 1; j < pixels; j++)
            {
                if (map[j] > map[best])
                {
                    best = j;
                }
            }

            selector.Data[(best * n) + i] = 1f;
            rows.Data[(c * n) + i] = 1f;
        }

        Tensor picked = Functional.MatMul(maps, selector);                 // [K, n]
        return Functional.Sum(Functional.Multiply(picked, rows), 0);      // [n]
    }
}
