using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Modules;

/// <summary>
/// Batch normalisation over channel dimension 1 (<c>torch.nn.BatchNorm1d</c> on [N, C], <c>BatchNorm2d</c> on
/// [N, C, H, W]): weight and bias [C]; buffers running_mean and running_var [C].
/// </summary>
public sealed class BatchNorm : Layer
{
    /// <summary>Creates the layer: weight 1, bias 0, running mean 0, running variance 1, as PyTorch.</summary>
    public BatchNorm(int features, float momentum = 0.1f, float epsilon = 1e-5f)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(features, 1);
        Momentum = momentum;
        Epsilon = epsilon;
        Weight = RegisterParameter("weight", Tensor.Full(1f, features));
        Bias = RegisterParameter("bias", Tensor.Zeros(features));
        RunningMean = RegisterBuffer("running_mean", Tensor.Zeros(features));
        RunningVariance = RegisterBuffer("running_var", Tensor.Full(1f, features));
    }

    /// <summary>Weight of the new batch statistics in the running ones.</summary>
    public float Momentum { get; }

    /// <summary>Added to the variance before the square root.</summary>
    public float Epsilon { get; }

    /// <summary>Scale γ [C].</summary>
    public Tensor Weight { get; }

    /// <summary>Shift β [C].</summary>
    public Tensor Bias { get; }

    /// <summary>Running mean [C].</summary>
    public Tensor RunningMean { get; }

    /// <summary>Running (unbiased) variance [C].</summary>
    public Tensor RunningVariance { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) =>
        Functional.BatchNorm(x, RunningMean, RunningVariance, Weight, Bias, IsTraining, Momentum, Epsilon);
}
