using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Modules;

/// <summary>Max pooling (<c>torch.nn.MaxPool2d</c>, square window).</summary>
public sealed class MaxPool2d(int kernelSize, int? stride = null, int padding = 0) : Layer
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Functional.MaxPool2d(x, kernelSize, stride, padding);
}

/// <summary>Adaptive average pooling to a fixed output size (<c>torch.nn.AdaptiveAvgPool2d</c>).</summary>
public sealed class AdaptiveAvgPool2d(int outputHeight, int outputWidth) : Layer
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Functional.AdaptiveAvgPool2d(x, outputHeight, outputWidth);
}

/// <summary>[N, ...] → [N, rest] (<c>torch.nn.Flatten</c>).</summary>
public sealed class Flatten(int startDimension = 1) : Layer
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Functional.Flatten(x, startDimension);
}
