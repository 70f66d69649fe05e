using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Modules;

/// <summary>Dropout (<c>torch.nn.Dropout</c>): active in training mode only; masks come from the given generator.</summary>
public sealed class Dropout(float probability, TensorRandom random) : Layer
{
    /// <summary>Probability of zeroing an element.</summary>
    public float Probability { get; } = probability;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Functional.Dropout(x, Probability, IsTraining, random);
}
