using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Tests;

/// <summary>The tile encoder CI uses (exported by Debian's PyTorch) and a seeded A-MIL head on its features.</summary>
internal static class TestEncoders
{
    /// <summary>Features per tile of the small encoder.</summary>
    public const int SmallOutputDim = 128;

    /// <summary>Exports the small encoder (96 px in, 128 features) as <paramref name="model"/>.onnx with its card and weights.</summary>
    public static Task<string> ExportSmallAsync(string model) =>
        ExternalProcess.RunReferenceScriptAsync("export_encoder.py", "export", "--arch", "small", "--out", model);

    /// <summary>Saves a gated A-MIL head on the small encoder's features with random weights from <paramref name="seed"/>.</summary>
    public static void SaveFeatureHead(string path, ulong seed, string name = "head", MilVariant variant = MilVariant.Ilse, int classes = 2)
    {
        var spec = new AttentionMilSpec
        {
            Variant = variant, Attention = MilAttention.Gated, Input = MilInput.Features, FeatureSize = SmallOutputDim, EmbeddingSize = 64, AttentionSize = 32,
            Head = variant == MilVariant.Ilse && classes == 2 ? MilHead.Binary : MilHead.Multiclass, ClassCount = classes,
        };
        string[] names = classes == 2 ? ["benign", "tumour"] : [.. Enumerable.Range(0, classes).Select(i => $"class{i}")];
        ModelCheckpoint.Save(path, new AttentionMil(spec, new TensorRandom(seed)), new ModelCard { Name = name, Spec = spec, Classes = names });
    }
}
