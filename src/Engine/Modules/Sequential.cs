using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Modules;

/// <summary>Layers applied in order (<c>torch.nn.Sequential</c>); children are named "0", "1", ... as in PyTorch.</summary>
public sealed class Sequential : Layer
{
    private readonly Layer[] _layers;

    /// <summary>Creates the sequence.</summary>
    public Sequential(params Layer[] layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        _layers = layers;
        for (int i = 0; i < layers.Length; i++)
        {
            RegisterModule(i.ToString(System.Globalization.CultureInfo.InvariantCulture), layers[i]);
        }
    }

    /// <summary>The layers, in order.</summary>
    public IReadOnlyList<Layer> Layers => _layers;

    /// <summary>
    /// Runs the layers. Under <see cref="GradMode.NoGrad"/> each intermediate result goes back to the pool as soon as
    /// the next layer has used it, so inference holds at most two activations at a time.
    /// </summary>
    public override Tensor Forward(Tensor x)
    {
        Tensor current = x;
        foreach (Layer layer in _layers)
        {
            Tensor next = layer.Forward(current);
            if (!GradMode.IsEnabled && !ReferenceEquals(current, x) && !ReferenceEquals(current, next))
            {
                current.Dispose();
            }

            current = next;
        }

        return current;
    }
}
