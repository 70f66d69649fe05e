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

/// <summary>Which attention-MIL family: Ilse et al.'s model, or CLAM's single- or multi-branch head (Lu et al. 2021).</summary>
public enum MilVariant
{
    /// <summary>Ilse et al. 2018: one attention branch, a sigmoid or softmax classifier, the bag loss alone.</summary>
    Ilse,

    /// <summary>CLAM-SB: one attention branch, a K-way classifier, and K instance classifiers trained by clustering.</summary>
    ClamSb,

    /// <summary>CLAM-MB: one attention branch and one bag classifier per class, and K instance classifiers.</summary>
    ClamMb,
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

    /// <summary>Ilse et al.'s model (the default) or a CLAM head (feature input only).</summary>
    public MilVariant Variant { get; init; } = MilVariant.Ilse;

    /// <summary>Dropout after the embedding and in the attention branches while training (CLAM's <c>--drop_out</c>, 0.25); CLAM only.</summary>
    public float Dropout { get; init; }

    /// <summary>k: the most- and least-attended instances each instance classifier is trained on (CLAM's <c>--B</c>, 8); CLAM only.</summary>
    public int InstanceSamples { get; init; } = 8;

    /// <summary>Weight of the bag loss; the instance clustering loss gets the rest (CLAM's <c>--bag_weight</c>, 0.7); CLAM only.</summary>
    public float BagWeight { get; init; } = 0.7f;

    /// <summary>
    /// Mutually exclusive subtypes (CLAM's <c>--subtyping</c>): the instance classifiers of the other classes also learn that
    /// a bag's most-attended instances are not theirs. Without it only the label's classifier is trained; CLAM only.
    /// </summary>
    public bool Subtyping { get; init; }

    /// <summary>Attention branches: one per class for CLAM-MB, else one.</summary>
    [JsonIgnore]
    public int Branches => Variant == MilVariant.ClamMb ? ClassCount : 1;

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

        if (Variant != MilVariant.Ilse)
        {
            if (Input != MilInput.Features || Head != MilHead.Multiclass)
            {
                throw new ArgumentException($"A CLAM head takes feature vectors and has a softmax over its K classes (K = 2 for a binary task); got {Input} input and a {Head} head.");
            }

            CheckClamParameters(InstanceSamples, Dropout, BagWeight);
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless k ≥ 1, dropout is in [0, 1) and the bag weight in [0, 1].</summary>
    internal static void CheckClamParameters(int instanceSamples, float dropout, float bagWeight)
    {
        if (instanceSamples < 1 || !(dropout is >= 0 and < 1) || !(bagWeight is >= 0 and <= 1))
        {
            throw new ArgumentException($"CLAM needs k ≥ 1 instance samples, dropout in [0, 1) and a bag weight in [0, 1]; got {instanceSamples}, {dropout}, {bagWeight}.");
        }
    }

    /// <summary>The architecture name stored in model cards: attention-mil, gated-attention-mil, clam-sb or clam-mb.</summary>
    [JsonIgnore]
    public string ArchitectureName => Variant switch
    {
        MilVariant.ClamSb => "clam-sb",
        MilVariant.ClamMb => "clam-mb",
        _ => Attention == MilAttention.Gated ? "gated-attention-mil" : "attention-mil",
    };
}
