using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Modules;

/// <summary>max(x, 0) (<c>torch.nn.ReLU</c>).</summary>
public sealed class ReLU : Layer
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Functional.Relu(x);
}

/// <summary>tanh(x) (<c>torch.nn.Tanh</c>).</summary>
public sealed class Tanh : Layer
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Functional.Tanh(x);
}

/// <summary>1 / (1 + e^−x) (<c>torch.nn.Sigmoid</c>).</summary>
public sealed class Sigmoid : Layer
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Functional.Sigmoid(x);
}

/// <summary>Softmax along a dimension (<c>torch.nn.Softmax</c>).</summary>
public sealed class Softmax(int dimension) : Layer
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Functional.Softmax(x, dimension);
}
