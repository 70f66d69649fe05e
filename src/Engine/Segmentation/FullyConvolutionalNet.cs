using SlidePlugin.Engine.Modules;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Segmentation;

/// <summary>The shape of a <see cref="FullyConvolutionalNet"/>.</summary>
public sealed record FcnSpec
{
    /// <summary>Input channels (1 grey, 3 RGB).</summary>
    public int Channels { get; init; } = 1;

    /// <summary>Output maps, background included: class 0 is background.</summary>
    public int Classes { get; init; } = 11;

    /// <summary>Channels of the three hidden convolutions.</summary>
    public IReadOnlyList<int> Widths { get; init; } = [32, 64, 128];

    /// <summary>Input pixels per output pixel along each axis (two 2x2 max-pools).</summary>
    public const int Stride = 4;
}

/// <summary>
/// A fully convolutional network (Pathak et al. 2015, on a LeNet-sized scale): convolutions and pooling only, so it takes
/// any input size and gives one score map per class at 1/4 resolution.
/// x: [N, C, H, W] → conv5(C→w0, pad 2)-ReLU-pool2 → conv5(w0→w1, pad 2)-ReLU-pool2 → conv3(w1→w2, pad 1)-ReLU →
/// conv1(w2→K) → logits [N, K, H/4, W/4]. State-dict names match the PyTorch reference's <c>nn.Sequential</c> ("body.0.weight", ...).
/// </summary>
public sealed class FullyConvolutionalNet : Module
{
    private readonly Sequential _body;

    /// <summary>Creates the network with PyTorch's default initialisation from <paramref name="random"/>.</summary>
    public FullyConvolutionalNet(FcnSpec spec, TensorRandom random)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(random);
        if (spec.Channels < 1 || spec.Classes < 2 || spec.Widths.Count != 3)
        {
            throw new ArgumentException("An FCN needs at least one input channel, two classes (background and one more) and three hidden widths.", nameof(spec));
        }

        Spec = spec;
        IReadOnlyList<int> w = spec.Widths;
        _body = RegisterModule("body", new Sequential(
            new Conv2d(spec.Channels, w[0], 5, random, padding: 2), new ReLU(), new MaxPool2d(2, 2),
            new Conv2d(w[0], w[1], 5, random, padding: 2), new ReLU(), new MaxPool2d(2, 2),
            new Conv2d(w[1], w[2], 3, random, padding: 1), new ReLU(),
            new Conv2d(w[2], spec.Classes, 1, random)));
    }

    /// <summary>The shape.</summary>
    public FcnSpec Spec { get; }

    /// <summary>Score maps (logits): [N, C, H, W] → [N, K, H/4, W/4]. H and W must be multiples of 4.</summary>
    public Tensor Forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank != 4 || x.Shape[1] != Spec.Channels || x.Shape[2] % FcnSpec.Stride != 0 || x.Shape[3] % FcnSpec.Stride != 0)
        {
            throw new ArgumentException($"Input [{string.Join(", ", x.Shape)}] is not [N, {Spec.Channels}, H, W] with H and W multiples of {FcnSpec.Stride}.", nameof(x));
        }

        return _body.Forward(x);
    }
}
