using SlidePlugin.Engine.Modules;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Mil;

/// <summary>What an attention-MIL model says about one bag.</summary>
/// <param name="Probabilities">[K] class probabilities; for a binary head [P(negative), P(positive)].</param>
/// <param name="Logits">[1, outputs]: the classifier's output before sigmoid / softmax (what losses train on).</param>
/// <param name="AttentionScores">
/// [N] raw attention scores before the softmax, in instance order: of the only branch, or for CLAM-MB of the predicted
/// class's branch (what CLAM's heatmaps show).
/// </param>
/// <param name="Attention">[N] attention weights (softmax over the bag, sums to 1) of that branch, in instance order.</param>
public sealed record MilOutput(Tensor Probabilities, Tensor Logits, Tensor AttentionScores, Tensor Attention) : IDisposable
{
    /// <summary>
    /// CLAM's instance clustering loss for a bag label, while training (null otherwise): built from the embeddings and
    /// attention of this forward pass, so its gradient reaches the embedding layer through the chosen instances.
    /// </summary>
    internal Func<int, Tensor>? InstanceLoss { get; init; }

    /// <summary>Returns the four tensors to the pool (after backward, when training).</summary>
    public void Dispose()
    {
        Probabilities.Dispose();
        Logits.Dispose();
        AttentionScores.Dispose();
        Attention.Dispose();
    }
}

/// <summary>
/// Attention-based deep multiple instance learning (Ilse, Tomczak and Welling 2018), plain and gated, with
/// the official code's layer names so its state dicts load unchanged:
/// <code>
/// feature_extractor_part1  conv(C→20,5) ReLU maxpool2 conv(20→50,5) ReLU maxpool2   (patches only)
/// feature_extractor_part2  fc(50·s·s → L) ReLU          or fc(F → L) ReLU for feature vectors
/// attention                fc(L→D) tanh fc(D→1)                                      (plain)
/// attention_V, attention_U, attention_weights: fc(L→D) tanh, fc(L→D) sigmoid, fc(D→1) (gated)
/// classifier               fc(L→1) sigmoid, or fc(L→K) softmax
/// </code>
/// With <see cref="MilVariant.ClamSb"/> or <see cref="MilVariant.ClamMb"/> it is CLAM's head instead (Lu et al. 2021), with
/// CLAM's names: <c>attention_net</c> (<see cref="ClamAttentionNet"/>), <c>classifiers</c> (fc(L→K), or one fc(L→1) per
/// class for MB) and <c>instance_classifiers</c> (one fc(L→2) per class, trained by the instance clustering loss).
/// </summary>
public sealed class AttentionMil : Module
{
    private readonly Sequential? _extractor;
    private readonly Sequential? _embedding;
    private readonly Sequential? _attention;
    private readonly Sequential? _attentionV;
    private readonly Sequential? _attentionU;
    private readonly Linear? _attentionWeights;
    private readonly Layer? _classifier;
    private readonly ClamAttentionNet? _clam;
    private readonly ModuleList<Linear>? _branchClassifiers;
    private readonly ModuleList<Linear>? _instanceClassifiers;

    /// <summary>Builds the model with PyTorch's default initialisation from <paramref name="random"/>.</summary>
    public AttentionMil(AttentionMilSpec spec, TensorRandom random)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(random);
        spec.Validate();
        Spec = spec;
        int l = spec.EmbeddingSize, d = spec.AttentionSize;
        if (spec.Variant != MilVariant.Ilse)
        {
            _clam = RegisterModule("attention_net", new ClamAttentionNet(spec, random));
            if (spec.Variant == MilVariant.ClamSb)
            {
                _classifier = RegisterModule("classifiers", new Linear(l, spec.ClassCount, random));
            }
            else
            {
                _branchClassifiers = RegisterModule("classifiers", new ModuleList<Linear>(Enumerable.Range(0, spec.ClassCount).Select(_ => new Linear(l, 1, random))));
            }

            _instanceClassifiers = RegisterModule("instance_classifiers", new ModuleList<Linear>(Enumerable.Range(0, spec.ClassCount).Select(_ => new Linear(l, 2, random))));
            return;
        }

        if (spec.Input == MilInput.Patches)
        {
            // Pool before ReLU: max-pooling commutes with a monotone function, so values and gradients are Ilse's
            // conv-ReLU-pool exactly, while the ReLU touches a quarter of the elements. The convolutions keep their
            // state-dict indices (0 and 3).
            _extractor = RegisterModule("feature_extractor_part1", new Sequential(
                new Conv2d(spec.Channels, 20, 5, random), new MaxPool2d(2, 2), new ReLU(),
                new Conv2d(20, 50, 5, random), new MaxPool2d(2, 2), new ReLU()));
        }

        int embeddingInput = spec.Input == MilInput.Patches ? 50 * spec.FeatureMapSize * spec.FeatureMapSize : spec.FeatureSize;
        _embedding = RegisterModule("feature_extractor_part2", new Sequential(new Linear(embeddingInput, l, random), new ReLU()));
        if (spec.Attention == MilAttention.Gated)
        {
            _attentionV = RegisterModule("attention_V", new Sequential(new Linear(l, d, random), new Tanh()));
            _attentionU = RegisterModule("attention_U", new Sequential(new Linear(l, d, random), new Sigmoid()));
            _attentionWeights = RegisterModule("attention_weights", new Linear(d, 1, random));
        }
        else
        {
            _attention = RegisterModule("attention", new Sequential(new Linear(l, d, random), new Tanh(), new Linear(d, 1, random)));
        }

        _classifier = RegisterModule("classifier", new Sequential(new Linear(l, spec.OutputCount, random)));
    }

    /// <summary>The architecture.</summary>
    public AttentionMilSpec Spec { get; }

    /// <summary>
    /// Scores one bag. bag: [N, C, S, S] patches or [N, F] feature vectors; N ≥ 1. Under <see cref="GradMode.NoGrad"/>
    /// intermediate activations go back to the pool as soon as they are used.
    /// </summary>
    public MilOutput Forward(Tensor bag)
    {
        Tensor h = Embed(bag);                                        // [N, L]
        Tensor scores = Score(h);                                     // [N]
        MilOutput output = Aggregate(h, scores);
        ReleaseIfInference(h);
        return output;
    }

    /// <summary>Instance embeddings H: [N, C, S, S] or [N, F] → [N, L].</summary>
    public Tensor Embed(Tensor bag)
    {
        ArgumentNullException.ThrowIfNull(bag);
        CheckBag(bag);
        if (_clam is not null)
        {
            return _clam.Embed(bag);                                  // [N, F] → [N, L]
        }

        if (_extractor is null)
        {
            return _embedding!.Forward(bag);                          // [N, F] → [N, L]
        }

        Tensor maps = FusedExtractor(bag);                            // [N, 50, s, s]
        Tensor flat = Functional.Flatten(maps);                       // [N, 50·s·s]
        ReleaseIfInference(maps);
        Tensor h = _embedding!.Forward(flat);                         // [N, L]
        ReleaseIfInference(flat);
        return h;
    }

    /// <summary>Raw attention scores (before the softmax): H [N, L] → [N], or [N, K] for CLAM-MB (one column per branch).</summary>
    public Tensor Score(Tensor h)
    {
        ArgumentNullException.ThrowIfNull(h);
        Tensor raw;
        if (_clam is not null)
        {
            raw = _clam.Score(h);                                     // [N, B]
            if (Spec.Branches > 1)
            {
                return raw;
            }
        }
        else if (_attention is not null)
        {
            raw = _attention.Forward(h);                              // [N, 1]
        }
        else
        {
            Tensor v = _attentionV!.Forward(h);                       // [N, D]
            Tensor u = _attentionU!.Forward(h);                       // [N, D]
            Tensor gated = Functional.Multiply(v, u);                 // [N, D]
            ReleaseIfInference(v);
            ReleaseIfInference(u);
            raw = _attentionWeights!.Forward(gated);                  // [N, 1]
            ReleaseIfInference(gated);
        }

        Tensor scores = Functional.Reshape(raw, h.Shape[0]);         // [N]
        ReleaseIfInference(raw);
        return scores;
    }

    /// <summary>
    /// Attention pooling and classification: a = softmax(scores) over the bag, M = aᵀH, then the classifier (for CLAM-MB
    /// per branch: Mₖ = aₖᵀH and logit k from the k-th bag classifier). h: [N, L]; scores: [N] or [N, K] as
    /// <see cref="Score"/> gives them. Usable on scores gathered batch by batch for bags too large for one pass.
    /// </summary>
    public MilOutput Aggregate(Tensor h, Tensor scores)
    {
        ArgumentNullException.ThrowIfNull(h);
        ArgumentNullException.ThrowIfNull(scores);
        int n = h.Shape[0], branches = Spec.Branches;
        if (scores.Length != n * branches)
        {
            throw new ArgumentException($"{scores.Length} attention scores for {n} instances of {branches} branches.", nameof(scores));
        }

        Tensor rows = branches == 1 ? Functional.Reshape(scores, 1, n) : Functional.Transpose(scores, 0, 1);   // [B, N]
        Tensor attentionRows = Functional.Softmax(rows, 1);                                                     // [B, N]
        ReleaseIfInference(rows);
        Tensor pooled = Functional.MatMul(attentionRows, h);                                                   // [B, L]
        Tensor logits = ClassifyPooled(pooled);                                                                 // [1, outputs]
        ReleaseIfInference(pooled);
        Tensor probabilities;
        using (Tensor detached = logits.Detach())
        {
            probabilities = Tensor.FromData(ProbabilitiesOf(detached), Spec.ClassCount);                      // [K]
        }

        Func<int, Tensor>? instanceLoss = _instanceClassifiers is not null && IsTraining && GradMode.IsEnabled
            ? label => InstanceLoss(h, attentionRows, label)
            : null;
        Tensor attention, branchScores;
        if (branches == 1)
        {
            attention = Functional.Reshape(attentionRows, n);                                                   // [N]
            branchScores = scores;
        }
        else
        {
            // CLAM-MB: the predicted class's branch, as CLAM's heatmaps show it.
            int predicted = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(probabilities.Data);
            attention = Tensor.FromData(attentionRows.Data.Slice(predicted * n, n), n);
            branchScores = Tensor.FromData([.. Enumerable.Range(0, n).Select(i => scores.Data[(i * branches) + predicted])], n);
        }

        ReleaseIfInference(attentionRows);

        // The caller reads these after a training step's backward.
        return new MilOutput(probabilities, logits.RetainAfterBackward(), branchScores.RetainAfterBackward(), attention.RetainAfterBackward())
        {
            InstanceLoss = instanceLoss,
        };
    }

    /// <summary>
    /// The bag logits from the pooled embeddings M [B, L]: [1, outputs]. Single branch: the classifier on M; CLAM-MB: logit k
    /// is the k-th bag classifier on Mₖ.
    /// </summary>
    private Tensor ClassifyPooled(Tensor pooled)
    {
        if (_branchClassifiers is null)
        {
            return _classifier!.Forward(pooled);                                                                // [1, outputs]
        }

        var logits = new Tensor[_branchClassifiers.Count];
        for (int k = 0; k < logits.Length; k++)
        {
            Tensor row = Functional.IndexSelect(pooled, [k]);                                                   // [1, L]
            logits[k] = _branchClassifiers[k].Forward(row);                                                     // [1, 1]
            ReleaseIfInference(row);
        }

        Tensor joined = Functional.Concat(logits, 1);                                                           // [1, K]
        foreach (Tensor logit in logits)
        {
            ReleaseIfInference(logit);
        }

        return joined;
    }

    /// <summary>CLAM-MB's bag classifiers on every row: [B, L] → [B, K] (logit k from the k-th classifier).</summary>
    private Tensor BranchLogits(Tensor embeddings)
    {
        Tensor[] columns = [.. Enumerable.Range(0, _branchClassifiers!.Count).Select(k => _branchClassifiers[k].Forward(embeddings))];   // K x [B, 1]
        Tensor logits = Functional.Concat(columns, 1);
        foreach (Tensor column in columns)
        {
            ReleaseIfInference(column);
        }

        return logits;
    }

    /// <summary>
    /// The bag prediction from a pooled embedding computed elsewhere (a slide pooled batch by batch): M [B, L] → [K].
    /// </summary>
    public float[] PredictPooled(Tensor pooled)
    {
        ArgumentNullException.ThrowIfNull(pooled);
        if (pooled.Rank != 2 || pooled.Shape[0] != Spec.Branches || pooled.Shape[1] != Spec.EmbeddingSize)
        {
            throw new ArgumentException($"A pooled embedding of [{Spec.Branches}, {Spec.EmbeddingSize}], not {Tensor.ShapeText(pooled.Shape)}.", nameof(pooled));
        }

        using Tensor logits = ClassifyPooled(pooled);                                                           // [1, outputs]
        return ProbabilitiesOf(logits);
    }

    /// <summary>Bag logits [1, outputs] → class probabilities [K]: [1 − p, p] with p = sigmoid(logit) for a binary head, else softmax.</summary>
    private float[] ProbabilitiesOf(Tensor logits)
    {
        if (Spec.Head == MilHead.Binary)
        {
            using Tensor positive = Functional.Sigmoid(logits);
            return [1f - positive.Data[0], positive.Data[0]];
        }

        using Tensor softmax = Functional.Softmax(logits, 1);
        return softmax.Data.ToArray();
    }

    /// <summary>
    /// Class probabilities of embeddings without attention: [B, L] → [B, K] (binary head: [1 − p, p] per row). On the
    /// pooled embedding M this is the bag prediction (a slide scored tile batch by tile batch); on instance embeddings it
    /// is what the classifier makes of each instance alone, a per-tile measurement for viewers.
    /// </summary>
    public Tensor ClassProbabilities(Tensor embeddings)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        int rows = embeddings.Shape[0];
        using Tensor logits = _branchClassifiers is null
            ? _classifier!.Forward(embeddings)                       // [B, outputs]
            : BranchLogits(embeddings);                               // [B, K]
        if (Spec.Head == MilHead.Multiclass)
        {
            return Functional.Softmax(logits, 1);                   // [B, K]
        }

        using Tensor positive = Functional.Sigmoid(logits);         // [B, 1]
        Tensor probabilities = Tensor.Empty(rows, 2);               // [B, 2]
        for (int i = 0; i < rows; i++)
        {
            probabilities.Data[2 * i] = 1f - positive.Data[i];
            probabilities.Data[(2 * i) + 1] = positive.Data[i];
        }

        return probabilities;
    }

    /// <summary>
    /// The training loss of one bag: Ilse et al.'s clamped binary cross-entropy on sigmoid(logit) for a binary head
    /// (label 0 or 1), cross-entropy on the logits for a multi-class head. A CLAM head while training adds its instance
    /// clustering loss: w · bag loss + (1 − w) · instance loss, w = <see cref="AttentionMilSpec.BagWeight"/>; evaluated,
    /// it is the bag loss alone, as CLAM reports it.
    /// </summary>
    public Tensor Loss(MilOutput output, int label)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (label < 0 || label >= Spec.ClassCount)
        {
            throw new ArgumentOutOfRangeException(nameof(label), label, $"The model has {Spec.ClassCount} classes.");
        }

        if (output.InstanceLoss is { } instanceLoss)
        {
            Tensor bag = Functional.CrossEntropy(output.Logits, [label]);
            Tensor instances = instanceLoss(label);
            Tensor weightedBag = Functional.Scale(bag, Spec.BagWeight);
            Tensor weightedInstances = Functional.Scale(instances, 1f - Spec.BagWeight);
            return Functional.Add(weightedBag, weightedInstances);
        }

        if (Spec.Head == MilHead.Multiclass)
        {
            return Functional.CrossEntropy(output.Logits, [label]);
        }

        Tensor probability = Functional.Sigmoid(output.Logits);     // [1, 1]
        Tensor target = Tensor.Full(label, 1, 1);                   // kept by the graph for backward
        return Functional.BinaryCrossEntropy(probability, target);
    }

    /// <summary>
    /// CLAM's instance clustering loss. For the label's class, its instance classifier learns that the k most-attended
    /// instances of its branch are the class (target 1) and the k least-attended are not (target 0); with
    /// <see cref="AttentionMilSpec.Subtyping"/> every other class's classifier also learns that its branch's k
    /// most-attended instances are not its class, and the sum is averaged over the classes. Cross-entropy on fc(L→2), k
    /// capped at the bag size (CLAM fails on bags smaller than k). h: [N, L]; attention: [B, N] after the softmax.
    /// </summary>
    private Tensor InstanceLoss(Tensor h, Tensor attention, int label)
    {
        int n = h.Shape[0], k = Math.Min(Spec.InstanceSamples, n), classes = Spec.ClassCount;
        Tensor? total = null;
        for (int c = 0; c < classes; c++)
        {
            if (c != label && !Spec.Subtyping)
            {
                continue;
            }

            int branch = Spec.Branches == 1 ? 0 : c;
            float[] weights = attention.Data.Slice(branch * n, n).ToArray();
            int[] byAttention = [.. Enumerable.Range(0, n).OrderByDescending(i => weights[i])];        // stable: ties keep instance order
            int[] rows = c == label ? [.. byAttention.Take(k), .. byAttention.Reverse().Take(k)] : [.. byAttention.Take(k)];
            int[] targets = [.. rows.Select((_, i) => c == label && i < k ? 1 : 0)];
            Tensor instances = Functional.IndexSelect(h, rows);                                         // [k or 2k, L]
            Tensor logits = _instanceClassifiers![c].Forward(instances);                                // [k or 2k, 2]
            Tensor loss = Functional.CrossEntropy(logits, targets);                                     // []
            total = total is null ? loss : Functional.Add(total, loss);
        }

        return Spec.Subtyping ? Functional.Scale(total!, 1f / classes) : total!;
    }

    private void CheckBag(Tensor bag)
    {
        bool fits = Spec.Input == MilInput.Patches
            ? bag.Rank == 4 && bag.Shape[1] == Spec.Channels && bag.Shape[2] == Spec.PatchSize && bag.Shape[3] == Spec.PatchSize
            : bag.Rank == 2 && bag.Shape[1] == Spec.FeatureSize;
        if (!fits || bag.Shape[0] < 1)
        {
            string expected = Spec.Input == MilInput.Patches
                ? $"[N, {Spec.Channels}, {Spec.PatchSize}, {Spec.PatchSize}]"
                : $"[N, {Spec.FeatureSize}]";
            throw new ArgumentException($"The model takes bags of {expected} with N ≥ 1; got {Tensor.ShapeText(bag.Shape)}.", nameof(bag));
        }
    }

    /// <summary>The extractor with each conv-pool-ReLU stage in one pass (the same values and gradients as the modules one by one).</summary>
    private Tensor FusedExtractor(Tensor bag)
    {
        var first = (Conv2d)_extractor!.Layers[0];
        var second = (Conv2d)_extractor.Layers[3];
        Tensor stage1 = Functional.Conv2dMaxPoolRelu(bag, first.Weight, first.Bias);          // [N, 20, (S − 4)/2, (S − 4)/2]
        Tensor maps = Functional.Conv2dMaxPoolRelu(stage1, second.Weight, second.Bias);       // [N, 50, s, s]
        ReleaseIfInference(stage1);
        return maps;
    }

    private static void ReleaseIfInference(Tensor tensor)
    {
        if (!GradMode.IsEnabled)
        {
            tensor.Dispose();
        }
    }
}
