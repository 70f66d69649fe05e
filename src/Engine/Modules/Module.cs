using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Modules;

/// <summary>
/// A model part with named parameters, buffers and child modules, as <c>torch.nn.Module</c>: names join with dots
/// (<c>feature_extractor_part1.0.weight</c>), so state dicts match PyTorch's.
/// </summary>
public abstract class Module
{
    private readonly List<(string Name, Tensor Tensor)> _parameters = [];
    private readonly List<(string Name, Tensor Tensor)> _buffers = [];
    private readonly List<(string Name, Module Module)> _children = [];

    /// <summary>True in training mode (dropout active, batch-norm on batch statistics); see <see cref="Train"/>.</summary>
    public bool IsTraining { get; private set; } = true;

    /// <summary>Every parameter with its dotted name, in registration order (PyTorch's <c>named_parameters</c>).</summary>
    public IEnumerable<(string Name, Tensor Parameter)> NamedParameters(string prefix = "")
    {
        foreach ((string name, Tensor tensor) in _parameters)
        {
            yield return (prefix + name, tensor);
        }

        foreach ((string name, Module child) in _children)
        {
            foreach ((string Name, Tensor Parameter) item in child.NamedParameters(prefix + name + "."))
            {
                yield return item;
            }
        }
    }

    /// <summary>Every parameter, in the order of <see cref="NamedParameters"/> (the order optimisers keep state in).</summary>
    public IReadOnlyList<Tensor> Parameters() => NamedParameters().Select(p => p.Parameter).ToList();

    /// <summary>Parameters and buffers by dotted name: what a checkpoint holds (PyTorch's <c>state_dict</c>).</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        Collect(this, "", state);
        return state;

        static void Collect(Module module, string prefix, Dictionary<string, Tensor> state)
        {
            foreach ((string name, Tensor tensor) in module._parameters.Concat(module._buffers))
            {
                state[prefix + name] = tensor;
            }

            foreach ((string name, Module child) in module._children)
            {
                Collect(child, prefix + name + ".", state);
            }
        }
    }

    /// <summary>
    /// Copies <paramref name="state"/> into the parameters and buffers. Every name, shape and count is checked first,
    /// and nothing is copied unless all match, so a bad checkpoint never leaves a half-loaded model.
    /// </summary>
    /// <exception cref="StateDictException">Names missing or unexpected, or shapes that differ; the message lists them all.</exception>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        IReadOnlyDictionary<string, Tensor> own = StateDict();
        var problems = new List<string>();
        problems.AddRange(own.Keys.Where(k => !state.ContainsKey(k)).Order(StringComparer.Ordinal).Select(k => $"missing '{k}'"));
        problems.AddRange(state.Keys.Where(k => !own.ContainsKey(k)).Order(StringComparer.Ordinal).Select(k => $"unexpected '{k}'"));
        foreach ((string name, Tensor target) in own)
        {
            if (state.TryGetValue(name, out Tensor? source) && !source.Shape.SequenceEqual(target.Shape))
            {
                problems.Add($"'{name}' has shape {Tensor.ShapeText(source.Shape)}, the model expects {Tensor.ShapeText(target.Shape)}");
            }
        }

        if (problems.Count > 0)
        {
            throw new StateDictException($"The weights do not fit {GetType().Name}: {string.Join("; ", problems)}.");
        }

        foreach ((string name, Tensor target) in own)
        {
            state[name].Data.CopyTo(target.Data);
        }
    }

    /// <summary>Training mode on or off, for this module and its children.</summary>
    public void Train(bool training = true)
    {
        IsTraining = training;
        foreach ((_, Module child) in _children)
        {
            child.Train(training);
        }
    }

    /// <summary>Inference mode (<c>model.eval()</c>).</summary>
    public void Eval() => Train(false);

    /// <summary>Drops every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        foreach (Tensor parameter in Parameters())
        {
            parameter.ZeroGrad();
        }
    }

    /// <summary>Registers a trainable tensor under <paramref name="name"/>.</summary>
    protected Tensor RegisterParameter(string name, Tensor parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        parameter.RequiresGrad = true;
        _parameters.Add((name, parameter));
        return parameter;
    }

    /// <summary>Registers state that is saved but not trained (batch-norm running statistics).</summary>
    protected Tensor RegisterBuffer(string name, Tensor buffer)
    {
        _buffers.Add((name, buffer));
        return buffer;
    }

    /// <summary>Registers a child module under <paramref name="name"/>.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        ArgumentNullException.ThrowIfNull(module);
        _children.Add((name, module));
        return module;
    }

    /// <summary>PyTorch's default bound for weights and biases: kaiming_uniform(a=√5) reduces to U(±1/√fan_in).</summary>
    protected static Tensor UniformParameter(TensorRandom random, int fanIn, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(random);
        float bound = fanIn > 0 ? 1f / MathF.Sqrt(fanIn) : 0f;
        Tensor tensor = Tensor.Empty(shape);
        random.FillUniform(tensor.Data, -bound, bound);
        return tensor;
    }
}

/// <summary>A module with one input and one output, usable in <see cref="Sequential"/>.</summary>
public abstract class Layer : Module
{
    /// <summary>Computes the layer.</summary>
    public abstract Tensor Forward(Tensor x);
}

/// <summary>Weights that do not fit a model: names missing or unexpected, or shapes that differ.</summary>
public sealed class StateDictException : Exception
{
    /// <summary>Creates the exception.</summary>
    public StateDictException() { }

    /// <summary>Creates the exception with its message.</summary>
    public StateDictException(string message) : base(message) { }

    /// <summary>Creates the exception with its message and cause.</summary>
    public StateDictException(string message, Exception innerException) : base(message, innerException) { }
}
