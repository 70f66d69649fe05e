using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Modules;

/// <summary>y = x·Wᵀ + b (<c>torch.nn.Linear</c>): weight [out, in], bias [out]; x [N, in] → [N, out].</summary>
public sealed class Linear : Layer
{
    /// <summary>Creates the layer with PyTorch's default initialisation.</summary>
    public Linear(int inFeatures, int outFeatures, TensorRandom random, bool hasBias = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inFeatures, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outFeatures, 1);
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", UniformParameter(random, inFeatures, outFeatures, inFeatures));
        Bias = hasBias ? RegisterParameter("bias", UniformParameter(random, inFeatures, outFeatures)) : null;
    }

    /// <summary>Input features.</summary>
    public int InFeatures { get; }

    /// <summary>Output features.</summary>
    public int OutFeatures { get; }

    /// <summary>[out, in].</summary>
    public Tensor Weight { get; }

    /// <summary>[out], or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Functional.Linear(x, Weight, Bias);
}
