using System.Text.Json;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.IO;

namespace SlidePlugin.Engine.Training;

/// <summary>Mean and sample standard deviation of one metric over the folds.</summary>
public sealed record FoldStatistic(double Mean, double Std)
{
    /// <summary>The statistic of <paramref name="values"/> (NaN values left out).</summary>
    public static FoldStatistic Of(IEnumerable<double> values)
    {
        var finite = values.Where(double.IsFinite).ToList();
        if (finite.Count == 0)
        {
            return new FoldStatistic(double.NaN, double.NaN);
        }

        double mean = finite.Average();
        double std = finite.Count < 2 ? 0 : Math.Sqrt(finite.Sum(v => (v - mean) * (v - mean)) / (finite.Count - 1));
        return new FoldStatistic(mean, std);
    }
}

/// <summary>The outcome of k-fold cross-validation: every fold's run, and test accuracy and AUC over the folds.</summary>
public sealed record CrossValidationResult(IReadOnlyList<TrainingResult> Folds, FoldStatistic Accuracy, FoldStatistic Auc, bool Cancelled);

/// <summary>
/// k-fold cross-validation (Ilse et al.'s protocol for the histology sets): fold k is the test set of run k, trained in
/// <c>fold-NN</c> under the output folder, so each fold resumes on its own; <c>cv-summary.json</c> collects them.
/// </summary>
public static class CrossValidation
{
    /// <summary>Runs the folds in order; stops after the fold running when cancelled.</summary>
    public static CrossValidationResult Run(BagDataset dataset, TrainingOptions options, int folds, string outputDirectory,
        Action<MilTrainer, int>? configure = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(folds, 2);
        var results = new List<TrainingResult>();
        bool cancelled = false;
        for (int fold = 0; fold < folds && !cancelled; fold++)
        {
            var trainer = new MilTrainer(dataset, options, Path.Combine(outputDirectory, $"fold-{fold + 1:D2}"));
            configure?.Invoke(trainer, fold);
            TrainingResult result = trainer.Run(DataSplit.CreateFold(dataset.Items, folds, fold, options.ValidationFraction, options.Seed), cancellationToken);
            results.Add(result);
            cancelled = result.Status == TrainingStatus.Cancelled;
        }

        var completed = results.Where(r => r.Status == TrainingStatus.Completed && r.Test is not null).ToList();
        var summary = new CrossValidationResult(results,
            FoldStatistic.Of(completed.Select(r => r.Test!.Accuracy)),
            FoldStatistic.Of(completed.Select(r => r.Test!.Auc)),
            cancelled);
        AtomicFile.WriteAllText(Path.Combine(outputDirectory, "cv-summary.json"), JsonSerializer.Serialize(new
        {
            folds,
            completed = completed.Count,
            cancelled,
            test_accuracy = summary.Accuracy,
            test_auc = summary.Auc,
            per_fold = completed.Select(r => new { accuracy = r.Test!.Accuracy, auc = r.Test.Auc, best_epoch = r.BestEpoch, seconds = Math.Round(r.Seconds, 1) }),
        }, MilTrainer.JsonOptions));
        return summary;
    }
}
