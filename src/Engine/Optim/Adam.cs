using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Optim;

/// <summary>
/// Adam as <c>torch.optim.Adam</c> in PyTorch 1.13 (amsgrad off): weight decay is added to the gradient (L2, not
/// AdamW's decoupled decay), and the update is p −= lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
/// Ilse et al. train with lr 5e-4, betas (0.9, 0.999), weight decay 1e-4. As PyTorch's, each parameter counts its own
/// steps, and one without a gradient (<see cref="Tensor.Grad"/> null) is left alone that step: CLAM's instance classifiers
/// learn only from bags of their class, and their bias correction follows their own updates.
/// </summary>
public sealed class Adam : Optimizer
{
    private readonly float[]?[] _firstMoment;
    private readonly float[]?[] _secondMoment;
    private readonly long[] _steps;

    /// <summary>Creates the optimiser.</summary>
    public Adam(IReadOnlyList<Tensor> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float epsilon = 1e-8f, float weightDecay = 0f)
        : base(parameters, learningRate, weightDecay)
    {
        if (beta1 is < 0 or >= 1 || beta2 is < 0 or >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(beta1), "Adam betas must be in [0, 1).");
        }

        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        _firstMoment = new float[]?[parameters.Count];
        _secondMoment = new float[]?[parameters.Count];
        _steps = new long[parameters.Count];
    }

    /// <summary>Decay of the first moment.</summary>
    public float Beta1 { get; }

    /// <summary>Decay of the second moment.</summary>
    public float Beta2 { get; }

    /// <summary>Added to the denominator.</summary>
    public float Epsilon { get; }

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

            long step = ++_steps[index];
            double biasCorrection1 = 1 - Math.Pow(Beta1, step);
            double biasCorrection2Sqrt = Math.Sqrt(1 - Math.Pow(Beta2, step));
            float stepSize = (float)(LearningRate / biasCorrection1);

            Span<float> p = parameter.Data;
            ReadOnlySpan<float> g = grad.Data;
            float[] m = _firstMoment[index] ??= new float[p.Length];
            float[] v = _secondMoment[index] ??= new float[p.Length];
            for (int i = 0; i < p.Length; i++)
            {
                float gradient = g[i] + (WeightDecay * p[i]);
                m[i] = (Beta1 * m[i]) + ((1 - Beta1) * gradient);
                v[i] = (Beta2 * v[i]) + ((1 - Beta2) * gradient * gradient);
                float denominator = (MathF.Sqrt(v[i]) / (float)biasCorrection2Sqrt) + Epsilon;
                p[i] -= stepSize * (m[i] / denominator);
            }
        }
    }

    /// <inheritdoc/>
    public override IReadOnlyDictionary<string, float[]> StateDict()
    {
        var state = new Dictionary<string, float[]>(StringComparer.Ordinal);
        for (int index = 0; index < Parameters.Count; index++)
        {
            if (_firstMoment[index] is { } m && _secondMoment[index] is { } v)
            {
                state[$"{index}.step"] = [_steps[index]];
                state[$"{index}.exp_avg"] = (float[])m.Clone();
                state[$"{index}.exp_avg_sq"] = (float[])v.Clone();
            }
        }

        return state;
    }

    /// <inheritdoc/>
    public override void LoadStateDict(IReadOnlyDictionary<string, float[]> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        // Runs saved before steps were counted per parameter hold one count for all ("step").
        long shared = state.TryGetValue("step", out float[]? step) && step.Length == 1 ? (long)step[0] : 0;
        for (int index = 0; index < Parameters.Count; index++)
        {
            _firstMoment[index] = ReadBuffer(state, index, "exp_avg");
            _secondMoment[index] = ReadBuffer(state, index, "exp_avg_sq");
            _steps[index] = _firstMoment[index] is null ? 0
                : state.TryGetValue($"{index}.step", out float[]? own) && own.Length == 1 ? (long)own[0] : shared;
        }
    }
}
