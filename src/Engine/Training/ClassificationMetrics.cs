namespace SlidePlugin.Engine.Training;

/// <summary>
/// Bag-level classification metrics. Binary: the positive class is 1, predicted when its probability is ≥ 0.5
/// (Ilse et al.), AUC of the positive probability. Multi-class: predicted = argmax; precision, recall and F1 are
/// macro averages, AUC the macro one-vs-rest average over the classes present. AUC is NaN when the set has a single class.
/// </summary>
public sealed record ClassificationMetrics(int Count, double Loss, double Accuracy, double Precision, double Recall, double F1, double Auc)
{
    /// <summary>Metrics of <paramref name="probabilities"/> (one row of class probabilities per bag) against <paramref name="labels"/>.</summary>
    public static ClassificationMetrics Compute(IReadOnlyList<int> labels, IReadOnlyList<float[]> probabilities, double loss)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(probabilities);
        if (labels.Count != probabilities.Count)
        {
            throw new ArgumentException($"{labels.Count} labels for {probabilities.Count} predictions.", nameof(probabilities));
        }

        int n = labels.Count;
        if (n == 0)
        {
            return new ClassificationMetrics(0, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);
        }

        int classes = probabilities[0].Length;
        int[] predicted = [.. probabilities.Select(p => Predict(p))];
        double accuracy = Enumerable.Range(0, n).Count(i => predicted[i] == labels[i]) / (double)n;
        if (classes == 2)
        {
            (double precision, double recall, double f1) = PrecisionRecallF1(labels, predicted, 1);
            return new ClassificationMetrics(n, loss, accuracy, precision, recall, f1, RocAuc(labels.Select(l => l == 1).ToArray(), probabilities.Select(p => (double)p[1]).ToArray()));
        }

        var perClass = Enumerable.Range(0, classes).Select(c => PrecisionRecallF1(labels, predicted, c)).ToList();
        // Macro one-vs-rest over the classes the set has (a class without examples has no AUC), as sklearn's
        // roc_auc_score(multi_class="ovr", average="macro") restricted to those classes; NaN when the set has one class.
        double[] perClassAuc = [.. Enumerable.Range(0, classes).Select(c => RocAuc(labels.Select(l => l == c).ToArray(), probabilities.Select(p => (double)p[c]).ToArray()))
            .Where(a => !double.IsNaN(a))];
        double auc = perClassAuc.Length == 0 ? double.NaN : perClassAuc.Average();
        return new ClassificationMetrics(n, loss, accuracy, perClass.Average(m => m.Precision), perClass.Average(m => m.Recall), perClass.Average(m => m.F1), auc);
    }

    /// <summary>The predicted class: for two classes, 1 when p[1] ≥ 0.5; otherwise the first largest probability.</summary>
    public static int Predict(float[] probabilities)
    {
        ArgumentNullException.ThrowIfNull(probabilities);
        if (probabilities.Length == 2)
        {
            return probabilities[1] >= 0.5f ? 1 : 0;
        }

        int best = 0;
        for (int c = 1; c < probabilities.Length; c++)
        {
            if (probabilities[c] > probabilities[best])
            {
                best = c;
            }
        }

        return best;
    }

    /// <summary>
    /// Area under the ROC curve: the probability that a random positive scores above a random negative, ties
    /// counting half (the Mann–Whitney statistic from average ranks; equals sklearn's roc_auc_score).
    /// </summary>
    public static double RocAuc(IReadOnlyList<bool> positive, IReadOnlyList<double> scores)
    {
        ArgumentNullException.ThrowIfNull(positive);
        ArgumentNullException.ThrowIfNull(scores);
        int n = positive.Count;
        long positives = positive.Count(p => p), negatives = n - positives;
        if (positives == 0 || negatives == 0)
        {
            return double.NaN;
        }

        int[] order = [.. Enumerable.Range(0, n).OrderBy(i => scores[i])];
        double positiveRankSum = 0;
        for (int start = 0; start < n;)
        {
            int end = start;
            while (end + 1 < n && scores[order[end + 1]] == scores[order[start]])
            {
                end++;
            }

            double averageRank = ((start + end) / 2.0) + 1; // ranks are 1-based
            for (int k = start; k <= end; k++)
            {
                if (positive[order[k]])
                {
                    positiveRankSum += averageRank;
                }
            }

            start = end + 1;
        }

        return (positiveRankSum - (positives * (positives + 1) / 2.0)) / (positives * (double)negatives);
    }

    private static (double Precision, double Recall, double F1) PrecisionRecallF1(IReadOnlyList<int> labels, int[] predicted, int positiveClass)
    {
        int truePositive = 0, falsePositive = 0, falseNegative = 0;
        for (int i = 0; i < labels.Count; i++)
        {
            bool isPositive = labels[i] == positiveClass, saidPositive = predicted[i] == positiveClass;
            truePositive += isPositive && saidPositive ? 1 : 0;
            falsePositive += !isPositive && saidPositive ? 1 : 0;
            falseNegative += isPositive && !saidPositive ? 1 : 0;
        }

        // sklearn's zero_division=0: a class never predicted has precision 0.
        double precision = truePositive + falsePositive == 0 ? 0 : truePositive / (double)(truePositive + falsePositive);
        double recall = truePositive + falseNegative == 0 ? 0 : truePositive / (double)(truePositive + falseNegative);
        double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
        return (precision, recall, f1);
    }
}
