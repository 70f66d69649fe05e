using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Optim;

/// <summary>
/// Updates parameters from their gradients (<c>torch.optim.Optimizer</c>). Per-parameter state is kept in the
/// order of the parameter list, and exposed by <see cref="StateDict"/> so a training run can be resumed exactly.
/// </summary>
public abstract class Optimizer
{
    /// <summary>Creates the optimiser over <paramref name="parameters"/>.</summary>
    protected Optimizer(IReadOnlyList<Tensor> parameters, float learningRate, float weightDecay)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfNegative(learningRate);
        ArgumentOutOfRangeException.ThrowIfNegative(weightDecay);
        Parameters = parameters;
        LearningRate = learningRate;
        WeightDecay = weightDecay;
    }

    /// <summary>The parameters updated by <see cref="Step"/>.</summary>
    public IReadOnlyList<Tensor> Parameters { get; }

    /// <summary>Step size; may be changed between steps (schedules).</summary>
    public float LearningRate { get; set; }

    /// <summary>L2 penalty added to the gradient (torch.optim's <c>weight_decay</c>).</summary>
    public float WeightDecay { get; }

    /// <summary>Applies one update; parameters without a gradient are left alone, as in PyTorch.</summary>
    public abstract void Step();

    /// <summary>Drops every parameter's gradient (<c>zero_grad(set_to_none=True)</c>).</summary>
    public void ZeroGrad()
    {
        foreach (Tensor parameter in Parameters)
        {
            parameter.ZeroGrad();
        }
    }

    /// <summary>The optimiser's state by name (e.g. <c>3.exp_avg</c>, <c>step</c>), for checkpoints.</summary>
    public abstract IReadOnlyDictionary<string, float[]> StateDict();

    /// <summary>Restores state saved by <see cref="StateDict"/>.</summary>
    public abstract void LoadStateDict(IReadOnlyDictionary<string, float[]> state);

    /// <summary>The per-parameter buffer <paramref name="name"/> of parameter <paramref name="index"/>, checked for length.</summary>
    protected float[]? ReadBuffer(IReadOnlyDictionary<string, float[]> state, int index, string name)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!state.TryGetValue($"{index}.{name}", out float[]? values))
        {
            return null;
        }

        return values.Length == Parameters[index].Length
            ? (float[])values.Clone()
            : throw new ArgumentException($"Optimiser state '{index}.{name}' has {values.Length} values; parameter {index} has {Parameters[index].Length}.");
    }
}
