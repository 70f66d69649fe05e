using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Modules;

/// <summary>2-D convolution (<c>torch.nn.Conv2d</c>, square kernel): weight [O, C, K, K], bias [O]; x [N, C, H, W] → [N, O, OH, OW].</summary>
public sealed class Conv2d : Layer
{
    /// <summary>Creates the layer with PyTorch's default initialisation (fan-in C·K·K).</summary>
    public Conv2d(int inChannels, int outChannels, int kernelSize, TensorRandom random, int stride = 1, int padding = 0, bool hasBias = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inChannels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outChannels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(kernelSize, 1);
        Stride = stride;
        Padding = padding;
        int fanIn = inChannels * kernelSize * kernelSize;
        Weight = RegisterParameter("weight", UniformParameter(random, fanIn, outChannels, inChannels, kernelSize, kernelSize));
        Bias = hasBias ? RegisterParameter("bias", UniformParameter(random, fanIn, outChannels)) : null;
    }

    /// <summary>Step between windows.</summary>
    public int Stride { get; }

    /// <summary>Zero padding on each side.</summary>
    public int Padding { get; }

    /// <summary>[O, C, K, K].</summary>
    public Tensor Weight { get; }

    /// <summary>[O], or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Functional.Conv2d(x, Weight, Bias, Stride, Padding);
}
