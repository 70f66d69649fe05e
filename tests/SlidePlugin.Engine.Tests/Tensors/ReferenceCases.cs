using System.Text.Json;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Tests.Tensors;

/// <summary>
/// One function of <see cref="Functional"/> against its torch.nn.functional counterpart: forward, then backward of
/// Σ(out · grad_out) with a random grad_out, comparing out and the gradient of every input named in <c>Grad</c>.
/// </summary>
public sealed record OpCase : ReferenceCase
{
    public OpCase(string name, string op, Dictionary<string, Tensor> inputs, string[] grad, Func<IReadOnlyDictionary<string, Tensor>, Tensor> ours,
        Dictionary<string, object>? parameters = null)
        : base(name, "op", WithGradOut(inputs, ours, name), OpParameters(op, grad, parameters))
    {
        Grad = grad;
        Ours = ours;
    }

    /// <summary>Inputs whose gradients are compared.</summary>
    public string[] Grad { get; }

    /// <summary>Our computation, given fresh copies of the inputs (those in <see cref="Grad"/> require grad).</summary>
    public Func<IReadOnlyDictionary<string, Tensor>, Tensor> Ours { get; }

    private static Dictionary<string, object> OpParameters(string op, string[] grad, Dictionary<string, object>? extra)
    {
        var all = new Dictionary<string, object>(extra ?? []) { ["op"] = op, ["grad"] = grad };
        return all;
    }

    private static Dictionary<string, Tensor> WithGradOut(Dictionary<string, Tensor> inputs, Func<IReadOnlyDictionary<string, Tensor>, Tensor> ours, string name)
    {
        IReadOnlyList<int> shape;
        using (GradMode.NoGrad())
        {
            shape = ours(inputs.ToDictionary(p => p.Key, p => p.Value.Detach())).Shape;
        }

        var random = new TensorRandom((ulong)name.GetHashCode(StringComparison.Ordinal) & 0xFFFF);
        return new Dictionary<string, Tensor>(inputs) { ["grad_out"] = Reference.Normal(random, [.. shape]) };
    }
}

/// <summary>An attention-MIL model, its checkpoint saved by us and loaded by PyTorch, one bag and its label.</summary>
public sealed record ModelCase(string Name, AttentionMilSpec Spec, int BagSize, int Label, ulong Seed)
    : ReferenceCase(Name, "model", BagOf(Spec, BagSize, Seed), new Dictionary<string, object>
    {
        ["spec"] = Spec,
        ["label"] = Label,
        ["weights"] = Name + ".ours.safetensors",
    })
{
    /// <summary>A model with this case's initial weights (the same every call).</summary>
    public AttentionMil NewModel() => new(Spec, new TensorRandom(Seed));

    public override void Write(string folder)
    {
        base.Write(folder);
        ModelCheckpoint.Save(Path.Combine(folder, Name + ".ours.safetensors"), NewModel(), new ModelCard { Name = Name, Classes = ClassNames(Spec) });
    }

    internal static string[] ClassNames(AttentionMilSpec spec) => Enumerable.Range(0, spec.ClassCount).Select(i => $"class{i}").ToArray();

    internal static Dictionary<string, Tensor> BagOf(AttentionMilSpec spec, int bagSize, ulong seed)
    {
        var random = new TensorRandom(seed + 1000);
        Tensor bag = spec.Input == MilInput.Patches
            ? Tensor.Empty(bagSize, spec.Channels, spec.PatchSize, spec.PatchSize)
            : Tensor.Empty(bagSize, spec.FeatureSize);
        random.FillUniform(bag.Data, 0f, 1f); // pixel-like values
        return new Dictionary<string, Tensor> { ["bag"] = bag };
    }
}

/// <summary>A model initialised by PyTorch, whose weights file we load; compared on one bag.</summary>
public sealed record TorchInitCase(string Name, AttentionMilSpec Spec, int BagSize)
    : ReferenceCase(Name, "torch_init", ModelCase.BagOf(Spec, BagSize, 7), new Dictionary<string, object> { ["spec"] = Spec, ["seed"] = 3 });

/// <summary>Every case given to PyTorch.</summary>
public static class ReferenceCases
{
    /// <summary>Case parameters as PyTorch's script reads them: snake_case names and enum values.</summary>
    public static JsonSerializerOptions Json => ModelCard.JsonOptions;

    public static IReadOnlyList<OpCase> Ops { get; } = BuildOps();

    public static IReadOnlyList<ModelCase> Models { get; } =
    [
        new("attention_mnist_grey28", new AttentionMilSpec { Attention = MilAttention.Attention, Channels = 1, PatchSize = 28 }, 13, 1, 11),
        new("gated_mnist_grey28", new AttentionMilSpec { Attention = MilAttention.Gated, Channels = 1, PatchSize = 28 }, 9, 0, 12),
        new("gated_breakhis_rgb28", new AttentionMilSpec { Attention = MilAttention.Gated, Channels = 3, PatchSize = 28 }, 40, 1, 13),
        new("attention_ucsb_rgb32", new AttentionMilSpec { Attention = MilAttention.Attention, Channels = 3, PatchSize = 32 }, 17, 0, 14),
        new("gated_ucsb_rgb32", new AttentionMilSpec { Attention = MilAttention.Gated, Channels = 3, PatchSize = 32 }, 21, 1, 15),
        new("gated_features_multiclass", new AttentionMilSpec
        {
            Attention = MilAttention.Gated, Input = MilInput.Features, FeatureSize = 96, EmbeddingSize = 64, AttentionSize = 32,
            Head = MilHead.Multiclass, ClassCount = 4,
        }, 300, 2, 16),
        new("attention_features_binary", new AttentionMilSpec
        {
            Attention = MilAttention.Attention, Input = MilInput.Features, FeatureSize = 128, EmbeddingSize = 64, AttentionSize = 16,
        }, 50, 1, 17),
        new("gated_rgb28_multiclass", new AttentionMilSpec { Attention = MilAttention.Gated, Head = MilHead.Multiclass, ClassCount = 3 }, 12, 0, 18),
        // CLAM heads, loss = 0.7 bag + 0.3 instance clustering (dropout off: PyTorch's masks are not ours).
        new("clam_sb_binary", Clam(MilVariant.ClamSb, MilAttention.Gated, classes: 2, subtyping: false), 40, 1, 19),
        new("clam_mb_subtyping", Clam(MilVariant.ClamMb, MilAttention.Gated, classes: 3, subtyping: true), 30, 2, 20),
        new("clam_sb_plain_bag_smaller_than_k", Clam(MilVariant.ClamSb, MilAttention.Attention, classes: 2, subtyping: false), 5, 0, 21),
        new("clam_mb_binary", Clam(MilVariant.ClamMb, MilAttention.Gated, classes: 2, subtyping: false), 25, 0, 22),
    ];

    private static AttentionMilSpec Clam(MilVariant variant, MilAttention attention, int classes, bool subtyping) => new()
    {
        Variant = variant, Attention = attention, Input = MilInput.Features, FeatureSize = 96, EmbeddingSize = 64, AttentionSize = 32,
        Head = MilHead.Multiclass, ClassCount = classes, Subtyping = subtyping,
    };

    public static IReadOnlyList<TorchInitCase> TorchInits { get; } =
    [
        new("torch_init_gated_rgb28", new AttentionMilSpec { Attention = MilAttention.Gated }, 30),
        new("torch_init_attention_features", new AttentionMilSpec
        {
            Attention = MilAttention.Attention, Input = MilInput.Features, FeatureSize = 1024, EmbeddingSize = 512, AttentionSize = 256,
            Head = MilHead.Multiclass, ClassCount = 3,
        }, 200),
        new("torch_init_clam_mb", Clam(MilVariant.ClamMb, MilAttention.Gated, classes: 3, subtyping: true), 50),
    ];

    public static IEnumerable<ReferenceCase> All => Ops.Cast<ReferenceCase>().Concat(Models).Concat(TorchInits);

    private static List<OpCase> BuildOps()
    {
        var r = new TensorRandom(2024);
        Tensor N(params int[] shape) => Reference.Normal(r, shape);
        Dictionary<string, Tensor> In(params (string Name, Tensor Tensor)[] items) => items.ToDictionary(i => i.Name, i => i.Tensor);
        Dictionary<string, object> P(params (string Name, object Value)[] items) => items.ToDictionary(i => i.Name, i => i.Value);

        Tensor probabilities = Tensor.FromData([0f, 1f, 5e-6f, 0.3f, 0.7f, 0.999999f, 0.5f, 0.01f], 8);
        Tensor labels = Tensor.FromData([0f, 1f, 1f, 0f, 1f, 0f, 1f, 1f], 8);
        Tensor large = N(3, 5);
        System.Numerics.Tensors.TensorPrimitives.Multiply(large.Data, 100f, large.Data); // softmax must not overflow

        return
        [
            new("linear", "linear", In(("x", N(7, 5)), ("w", N(3, 5)), ("b", N(3))), ["x", "w", "b"], t => Functional.Linear(t["x"], t["w"], t["b"])),
            new("linear_no_bias", "linear", In(("x", N(4, 6)), ("w", N(2, 6))), ["x", "w"], t => Functional.Linear(t["x"], t["w"])),
            new("matmul", "matmul", In(("a", N(4, 6)), ("b", N(6, 3))), ["a", "b"], t => Functional.MatMul(t["a"], t["b"])),
            new("conv2d_3x3", "conv2d", In(("x", N(2, 3, 9, 9)), ("w", N(4, 3, 3, 3)), ("b", N(4))), ["x", "w", "b"],
                t => Functional.Conv2d(t["x"], t["w"], t["b"]), P(("stride", 1), ("padding", 0))),
            new("conv2d_stride2_padding1", "conv2d", In(("x", N(2, 2, 8, 7)), ("w", N(5, 2, 3, 3)), ("b", N(5))), ["x", "w", "b"],
                t => Functional.Conv2d(t["x"], t["w"], t["b"], stride: 2, padding: 1), P(("stride", 2), ("padding", 1))),
            new("conv2d_5x5_stride3_padding2", "conv2d", In(("x", N(3, 2, 11, 10)), ("w", N(3, 2, 5, 5))), ["x", "w"],
                t => Functional.Conv2d(t["x"], t["w"], null, stride: 3, padding: 2), P(("stride", 3), ("padding", 2))),
            new("conv2d_lenet_first_layer", "conv2d", In(("x", N(5, 3, 28, 28)), ("w", N(20, 3, 5, 5)), ("b", N(20))), ["x", "w", "b"],
                t => Functional.Conv2d(t["x"], t["w"], t["b"]), P(("stride", 1), ("padding", 0))),
            new("conv2d_5x5_padding2_fcn_layer", "conv2d", In(("x", N(3, 4, 9, 11)), ("w", N(10, 4, 5, 5)), ("b", N(10))), ["x", "w", "b"],
                t => Functional.Conv2d(t["x"], t["w"], t["b"], padding: 2), P(("stride", 1), ("padding", 2))),
            new("max_pool2d_2", "max_pool2d", In(("x", N(2, 3, 8, 8))), ["x"], t => Functional.MaxPool2d(t["x"], 2, 2),
                P(("kernel", 2), ("stride", 2), ("padding", 0))),
            new("max_pool2d_odd_input", "max_pool2d", In(("x", N(1, 2, 5, 7))), ["x"], t => Functional.MaxPool2d(t["x"], 2, 2),
                P(("kernel", 2), ("stride", 2), ("padding", 0))),
            new("max_pool2d_3_stride2_padding1", "max_pool2d", In(("x", N(2, 2, 7, 9))), ["x"], t => Functional.MaxPool2d(t["x"], 3, 2, 1),
                P(("kernel", 3), ("stride", 2), ("padding", 1))),
            new("adaptive_avg_pool2d", "adaptive_avg_pool2d", In(("x", N(2, 3, 7, 5))), ["x"], t => Functional.AdaptiveAvgPool2d(t["x"], 3, 2),
                P(("oh", 3), ("ow", 2))),
            new("relu", "relu", In(("x", N(4, 9))), ["x"], t => Functional.Relu(t["x"])),
            new("tanh", "tanh", In(("x", N(4, 9))), ["x"], t => Functional.Tanh(t["x"])),
            new("sigmoid", "sigmoid", In(("x", N(4, 9))), ["x"], t => Functional.Sigmoid(t["x"])),
            new("softmax_last", "softmax", In(("x", N(3, 5))), ["x"], t => Functional.Softmax(t["x"], 1), P(("dim", 1))),
            new("softmax_first_of_three", "softmax", In(("x", N(4, 3, 2))), ["x"], t => Functional.Softmax(t["x"], 0), P(("dim", 0))),
            new("softmax_large_scores", "softmax", In(("x", large)), ["x"], t => Functional.Softmax(t["x"], -1), P(("dim", -1))),
            new("log_softmax", "log_softmax", In(("x", N(3, 6))), ["x"], t => Functional.LogSoftmax(t["x"], 1), P(("dim", 1))),
            new("add", "add", In(("a", N(3, 4)), ("b", N(3, 4))), ["a", "b"], t => Functional.Add(t["a"], t["b"])),
            new("sub", "sub", In(("a", N(3, 4)), ("b", N(3, 4))), ["a", "b"], t => Functional.Subtract(t["a"], t["b"])),
            new("mul", "mul", In(("a", N(3, 4)), ("b", N(3, 4))), ["a", "b"], t => Functional.Multiply(t["a"], t["b"])),
            new("scale", "scale", In(("x", N(3, 4))), ["x"], t => Functional.Scale(t["x"], -2.5f), P(("scale", -2.5))),
            new("transpose", "transpose", In(("x", N(2, 3, 4))), ["x"], t => Functional.Transpose(t["x"], 0, 2), P(("dim0", 0), ("dim1", 2))),
            new("cat", "cat", In(("x0", N(2, 3)), ("x1", N(2, 4))), ["x0", "x1"], t => Functional.Concat([t["x0"], t["x1"]], 1),
                P(("count", 2), ("dim", 1))),
            new("flatten", "flatten", In(("x", N(2, 3, 4, 5))), ["x"], t => Functional.Flatten(t["x"], 1), P(("start", 1))),
            new("sum", "sum", In(("x", N(3, 4))), ["x"], t => Functional.Sum(t["x"])),
            new("mean", "mean", In(("x", N(3, 4))), ["x"], t => Functional.Mean(t["x"])),
            new("sum_dim", "sum_dim", In(("x", N(3, 4, 5))), ["x"], t => Functional.Sum(t["x"], 1), P(("dim", 1), ("keep", false))),
            new("mean_dim_keep", "mean_dim", In(("x", N(3, 4, 5))), ["x"], t => Functional.Mean(t["x"], -1, keepDimension: true),
                P(("dim", -1), ("keep", true))),
            BatchNormCase("batch_norm_train_1d", N(6, 4), training: true, r),
            BatchNormCase("batch_norm_train_2d", N(3, 4, 5, 5), training: true, r),
            BatchNormCase("batch_norm_eval_2d", N(3, 4, 5, 5), training: false, r),
            new("bce_clamped", "bce_clamped", In(("p", probabilities), ("y", labels)), ["p"],
                t => Functional.BinaryCrossEntropy(t["p"], t["y"])),
            new("cross_entropy", "cross_entropy", In(("logits", N(5, 4)), ("targets", Tensor.FromData([0f, 3f, 1f, 1f, 2f], 5))), ["logits"],
                t => Functional.CrossEntropy(t["logits"], t["targets"].ToArray().Select(v => (int)v).ToArray())),
        ];
    }

    private static OpCase BatchNormCase(string name, Tensor x, bool training, TensorRandom r)
    {
        int channels = x.Shape[1];
        Tensor runningVariance = Tensor.Empty(channels);
        r.FillUniform(runningVariance.Data, 0.5f, 2f);
        var inputs = new Dictionary<string, Tensor>
        {
            ["x"] = x,
            ["w"] = Reference.Normal(r, channels),
            ["b"] = Reference.Normal(r, channels),
            ["running_mean"] = Reference.Normal(r, channels),
            ["running_var"] = runningVariance,
        };
        return new OpCase(name, "batch_norm", inputs, ["x", "w", "b"],
            t => Functional.BatchNorm(t["x"], t["running_mean"], t["running_var"], t["w"], t["b"], training, 0.1f, 1e-5f),
            new Dictionary<string, object> { ["training"] = training, ["momentum"] = 0.1, ["eps"] = 1e-5 });
    }
}
