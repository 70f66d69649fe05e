namespace SlidePlugin.Engine.Training;

/// <summary>One finished epoch: training metrics (from the steps as they ran), validation metrics, time, and whether it is the best so far.</summary>
public sealed record EpochMetrics(int Epoch, ClassificationMetrics Train, ClassificationMetrics Validation, double Seconds, bool IsBest);

/// <summary>Where a training run is, bag by bag: for progress bars.</summary>
public sealed record TrainingProgress(int Epoch, int Epochs, int Bag, int Bags, double MeanLoss);

/// <summary>How a run ended.</summary>
public enum TrainingStatus
{
    /// <summary>All epochs ran and the test set was scored.</summary>
    Completed,

    /// <summary>Stopped on request; the checkpoints are those of the last finished epoch.</summary>
    Cancelled,
}

/// <summary>The outcome of a run: the checkpoints written, the history, and the test metrics of the best model.</summary>
public sealed record TrainingResult(
    TrainingStatus Status,
    string OutputDirectory,
    int EpochsDone,
    string? BestModelPath,
    string? LastModelPath,
    int BestEpoch,
    ClassificationMetrics? Test,
    IReadOnlyList<EpochMetrics> History,
    DataSplit Split,
    double Seconds);
