using SlidePlugin.Engine.Mil;

namespace SlidePlugin.Engine.Training;

/// <summary>How a model is trained. Defaults are Ilse et al.'s: Adam, lr 5e-4, betas 0.9/0.999, weight decay 1e-4, one bag per step.</summary>
public sealed record TrainingOptions
{
    /// <summary>Plain or gated attention.</summary>
    public MilAttention Attention { get; init; } = MilAttention.Gated;

    /// <summary>Ilse et al.'s model, or a CLAM head (CLAM-SB / CLAM-MB, feature bags only).</summary>
    public MilVariant Variant { get; init; } = MilVariant.Ilse;

    /// <summary>CLAM: dropout while training; null means CLAM's 0.25.</summary>
    public float? Dropout { get; init; }

    /// <summary>CLAM: k, the most- and least-attended instances of a bag its instance classifiers learn from.</summary>
    public int InstanceSamples { get; init; } = 8;

    /// <summary>CLAM: the bag loss's weight in the total; the instance clustering loss gets 1 − it.</summary>
    public float BagWeight { get; init; } = 0.7f;

    /// <summary>CLAM: the classes are mutually exclusive subtypes (out-of-class instance supervision too).</summary>
    public bool Subtyping { get; init; }

    /// <summary>Passes over the training bags.</summary>
    public int Epochs { get; init; } = 100;

    /// <summary>Adam learning rate.</summary>
    public float LearningRate { get; init; } = 5e-4f;

    /// <summary>Adam β1.</summary>
    public float Beta1 { get; init; } = 0.9f;

    /// <summary>Adam β2.</summary>
    public float Beta2 { get; init; } = 0.999f;

    /// <summary>L2 weight decay (torch.optim.Adam's).</summary>
    public float WeightDecay { get; init; } = 1e-4f;

    /// <summary>Seed of the split, the initial weights, the bag order and augmentation.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Fraction of training bags held out to choose the best epoch (when the data set marks no <c>val</c> bags).</summary>
    public double ValidationFraction { get; init; } = 0.1;

    /// <summary>Fraction of bags without a fixed split held out as the test set (ignored for k-fold).</summary>
    public double TestFraction { get; init; } = 0.2;

    /// <summary>Random flips and 90° rotations of each patch while training.</summary>
    public bool Augment { get; init; }

    /// <summary>The resolution the model is meant for (µm/px), recorded in the model card.</summary>
    public double? Mpp { get; init; }

    /// <summary>The objective magnification the model is meant for, recorded in the model card.</summary>
    public double? Magnification { get; init; }

    /// <summary>Continue the run found in the output folder; without it a folder holding a run is refused.</summary>
    public bool Resume { get; init; }

    /// <summary>Intended use and known limits, written in the card.</summary>
    public string Limitations { get; init; } = "Trained by slideplugin train; validate on your own data before use.";

    /// <summary>Model name written in the card.</summary>
    public string ModelName { get; init; } = "amil";

    /// <summary>Checks the values; throws <see cref="ArgumentException"/> naming the first bad one.</summary>
    public void Validate()
    {
        if (Epochs < 1)
        {
            throw new ArgumentException($"Epochs must be at least 1, not {Epochs}.");
        }

        if (!(LearningRate > 0) || !float.IsFinite(LearningRate))
        {
            throw new ArgumentException($"The learning rate must be positive, not {LearningRate}.");
        }

        AttentionMilSpec.CheckClamParameters(InstanceSamples, Dropout ?? 0, BagWeight);

        if (Mpp is { } mpp && !(mpp > 0))
        {
            throw new ArgumentException($"The model's mpp must be positive, not {mpp}.");
        }
    }
}
