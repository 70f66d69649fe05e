using System.Text.Json.Serialization;

namespace SlidePlugin.Engine.Mil;

/// <summary>Plain attention (tanh) or gated attention (tanh ⊙ sigmoid), Ilse et al. 2018 eqs. 8 and 9.</summary>
public enum MilAttention
{
    /// <summary>a_k ∝ exp(wᵀ tanh(V h_k)).</summary>
    Attention,

    /// <summary>a_k ∝ exp(wᵀ (tanh(V h_k) ⊙ sigm(U h_k))).</summary>
    Gated,
}

/// <summary>What a bag holds: image patches through the LeNet-style extractor, or precomputed feature vectors.</summary>
public enum MilInput
{
    /// <summary>[N, C, S, S] patches → conv(C→20,5)-ReLU-pool-conv(20→50,5)-ReLU-pool-fc(→L)-ReLU.</summary>
    Patches,

    /// <summary>[N, F] feature vectors (CLAM-style) → fc(F→L)-ReLU.</summary>
    Features,
}

/// <summary>One sigmoid output for a binary label (the paper), or a softmax over K classes.</summary>
public enum MilHead
{
    /// <summary>classifier L→1, sigmoid: P(positive).</summary>
    Binary,

    /// <summary>classifier L→K, softmax.</summary>
    Multiclass,
}

/// <summary>
/// The shape of an attention-MIL model. The defaults are Ilse et al.'s MNIST-bags model (28x28, L 500, D 128)
/// with RGB input; the model card stores this record, so a checkpoint rebuilds its own model.
/// </summary>
public sealed record AttentionMilSpec
{
    /// <summary>Plain or gated attention.</summary>
    public MilAttention Attention { get; init; } = MilAttention.Gated;

    /// <summary>Patches or feature vectors.</summary>
    public MilInput Input { get; init; } = MilInput.Patches;

    /// <summary>Patch channels (3 RGB, 1 grey); patches only.</summary>
    public int Channels { get; init; } = 3;

    /// <summary>Patch side in pixels (28 BreakHis/MNIST, 32 UCSB); patches only.</summary>
    public int PatchSize { get; init; } = 28;

    /// <summary>Length of the feature vectors; features only.</summary>
    public int FeatureSize { get; init; }

    /// <summary>L: instance embedding size.</summary>
    public int EmbeddingSize { get; init; } = 500;

    /// <summary>D: hidden size of the attention network.</summary>
    public int AttentionSize { get; init; } = 128;

    /// <summary>Binary (sigmoid) or multi-class (softmax).</summary>
    public MilHead Head { get; init; } = MilHead.Binary;

    /// <summary>Number of classes: 2 for <see cref="MilHead.Binary"/>, K ≥ 2 for <see cref="MilHead.Multiclass"/>.</summary>
    public int ClassCount { get; init; } = 2;

    /// <summary>Side of the feature maps after the extractor's two conv-pool stages: ((S − 4) / 2 − 4) / 2.</summary>
    [JsonIgnore]
    public int FeatureMapSize => (((PatchSize - 4) / 2) - 4) / 2;

    /// <summary>Outputs of the classifier: 1 for binary, K for multi-class.</summary>
    [JsonIgnore]
    public int OutputCount => Head == MilHead.Binary ? 1 : ClassCount;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field that cannot build a model.</summary>
    public void Validate()
    {
        if (Input == MilInput.Patches && (Channels < 1 || PatchSize < 16))
        {
            throw new ArgumentException($"Patch input needs at least one channel and patches of at least 16 px (the extractor loses 12); got {Channels} channels, {PatchSize} px.");
        }

        if (Input == MilInput.Features && FeatureSize < 1)
        {
            throw new ArgumentException("Feature input needs FeatureSize ≥ 1.");
        }

        if (EmbeddingSize < 1 || AttentionSize < 1)
        {
            throw new ArgumentException($"EmbeddingSize and AttentionSize must be positive; got {EmbeddingSize} and {AttentionSize}.");
        }

        if (ClassCount < 2 || (Head == MilHead.Binary && ClassCount != 2))
        {
            throw new ArgumentException($"A {Head} head needs {(Head == MilHead.Binary ? "exactly 2" : "at least 2")} classes; got {ClassCount}.");
        }
    }

    /// <summary>The architecture name stored in model cards: attention-mil or gated-attention-mil.</summary>
    [JsonIgnore]
    public string ArchitectureName => Attention == MilAttention.Gated ? "gated-attention-mil" : "attention-mil";
}
