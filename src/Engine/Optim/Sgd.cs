using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Optim;

/// <summary>
/// Stochastic gradient descent as <c>torch.optim.SGD</c>: g += wd·p; with momentum, b = g on the first step and
/// b = μ·b + (1 − dampening)·g after; Nesterov uses g + μ·b; then p −= lr·b.
/// </summary>
public sealed class Sgd : Optimizer
{
    private readonly float[]?[] _momentumBuffers;

    /// <summary>Creates the optimiser.</summary>
    public Sgd(IReadOnlyList<Tensor> parameters, float learningRate, float momentum = 0f, float dampening = 0f,
        float weightDecay = 0f, bool nesterov = false)
        : base(parameters, learningRate, weightDecay)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(momentum);
        if (nesterov && (momentum <= 0 || dampening != 0))
        {
            throw new ArgumentException("Nesterov momentum needs a momentum and zero dampening.", nameof(nesterov));
        }

        Momentum = momentum;
        Dampening = dampening;
        Nesterov = nesterov;
        _momentumBuffers = new float[]?[parameters.Count];
    }

    /// <summary>Momentum factor μ.</summary>
    public float Momentum { get; }

    /// <summary>Dampening of the momentum.</summary>
    public float Dampening { get; }

    /// <summary>Nesterov momentum.</summary>
    public bool Nesterov { get; }

    /// <inheritdoc/>
    public override void Step()
    {
        for (int index = 0; index < Parameters.Count; index++)
        {
            Tensor parameter = Parameters[index];
            if (parameter.Grad is not { } grad)
            {
                continue;
            }

            Span<float> p = parameter.Data;
            ReadOnlySpan<float> g = grad.Data;
            bool first = _momentumBuffers[index] is null;
            float[]? buffer = Momentum != 0 ? _momentumBuffers[index] ??= new float[p.Length] : null;
            for (int i = 0; i < p.Length; i++)
            {
                float d = g[i] + (WeightDecay * p[i]);
                if (buffer is not null)
                {
                    buffer[i] = first ? d : (Momentum * buffer[i]) + ((1 - Dampening) * d);
                    d = Nesterov ? d + (Momentum * buffer[i]) : buffer[i];
                }

                p[i] -= LearningRate * d;
            }
        }
    }

    /// <inheritdoc/>
    public override IReadOnlyDictionary<string, float[]> StateDict()
    {
        var state = new Dictionary<string, float[]>(StringComparer.Ordinal);
        for (int index = 0; index < Parameters.Count; index++)
        {
            if (_momentumBuffers[index] is { } buffer)
            {
                state[$"{index}.momentum_buffer"] = (float[])buffer.Clone();
            }
        }

        return state;
    }

    /// <inheritdoc/>
    public override void LoadStateDict(IReadOnlyDictionary<string, float[]> state)
    {
        for (int index = 0; index < Parameters.Count; index++)
        {
            _momentumBuffers[index] = ReadBuffer(state, index, "momentum_buffer");
        }
    }
}
