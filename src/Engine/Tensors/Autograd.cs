namespace SlidePlugin.Engine.Tensors;

/// <summary>Whether operations on this thread record the graph for <see cref="Tensor.Backward"/>.</summary>
public static class GradMode
{
    [ThreadStatic]
    private static int t_disabledDepth;

    /// <summary>True unless inside a <see cref="NoGrad"/> scope on this thread.</summary>
    public static bool IsEnabled => t_disabledDepth == 0;

    /// <summary>
    /// Inference: until the scope is disposed, operations record nothing and keep no saved tensors, like
    /// <c>torch.no_grad()</c>.
    /// </summary>
    public static NoGradScope NoGrad()
    {
        t_disabledDepth++;
        return new NoGradScope();
    }

    /// <summary>Ends a <see cref="NoGrad"/> scope.</summary>
    public readonly struct NoGradScope : IDisposable
    {
        /// <inheritdoc/>
        public void Dispose() => t_disabledDepth--;
    }
}

/// <summary>One recorded operation: its output, its inputs, and how to send the output's gradient back to them.</summary>
internal sealed class GradNode(string operation, Tensor output, Tensor[] inputs, Action<Tensor> backward, long sequence)
{
    public string Operation { get; } = operation;

    public Tensor Output { get; } = output;

    public Tensor[] Inputs { get; private set; } = inputs;

    /// <summary>Called with the output's gradient; accumulates into each input's gradient that is required.</summary>
    public Action<Tensor>? BackwardFunction { get; private set; } = backward;

    /// <summary>Position on the tape: a node always comes after the nodes that computed its inputs.</summary>
    public long Sequence { get; } = sequence;

    public void Release()
    {
        BackwardFunction = null;
        Inputs = [];
    }
}

/// <summary>
/// Reverse-mode automatic differentiation over a tape: every operation whose inputs need gradients appends a
/// <see cref="GradNode"/> with a sequence number; <see cref="Backward"/> replays the nodes reachable from the
/// loss in reverse tape order, so each node runs once, after every consumer of its output has contributed; then its
/// output's storage goes back to the pool, unless the output is the loss or was marked with
/// <see cref="Tensor.RetainAfterBackward"/>.
/// </summary>
internal static class Autograd
{
    private static long s_sequence;

    /// <summary>True when an operation on these inputs must be recorded.</summary>
    public static bool ShouldRecord(Tensor a) => GradMode.IsEnabled && a.RequiresGrad;

    /// <inheritdoc cref="ShouldRecord(Tensor)"/>
    public static bool ShouldRecord(Tensor a, Tensor? b) => GradMode.IsEnabled && (a.RequiresGrad || b is { RequiresGrad: true });

    /// <inheritdoc cref="ShouldRecord(Tensor)"/>
    public static bool ShouldRecord(Tensor a, Tensor? b, Tensor? c) =>
        GradMode.IsEnabled && (a.RequiresGrad || b is { RequiresGrad: true } || c is { RequiresGrad: true });

    /// <inheritdoc cref="ShouldRecord(Tensor)"/>
    public static bool ShouldRecord(IReadOnlyList<Tensor> inputs) => GradMode.IsEnabled && inputs.Any(t => t.RequiresGrad);

    /// <summary>Appends <paramref name="output"/>'s operation to the tape.</summary>
    public static void Record(string operation, Tensor output, Tensor[] inputs, Action<Tensor> backward)
    {
        output.RequiresGrad = true;
        output.Node = new GradNode(operation, output, inputs, backward, Interlocked.Increment(ref s_sequence));
    }

    public static void Backward(Tensor root, Tensor? gradient)
    {
        if (!root.RequiresGrad)
        {
            throw new InvalidOperationException("Backward() on a tensor that does not require grad: no input of its computation requires grad.");
        }

        if (gradient is null && root.Length != 1)
        {
            throw new InvalidOperationException($"Backward() without a gradient needs a one-element tensor (a loss); this one has shape {Tensor.ShapeText(root.Shape)}.");
        }

        if (gradient is not null && gradient.Length != root.Length)
        {
            throw new ArgumentException($"Gradient of shape {Tensor.ShapeText(gradient.Shape)} does not match the tensor's {Tensor.ShapeText(root.Shape)}.", nameof(gradient));
        }

        List<GradNode> tape = ReachableNodes(root);
        tape.Sort((a, b) => b.Sequence.CompareTo(a.Sequence));

        Span<float> rootGrad = root.GradData();
        if (gradient is null)
        {
            rootGrad.Fill(1f);
        }
        else
        {
            gradient.Data.CopyTo(rootGrad);
        }

        foreach (GradNode node in tape)
        {
            Tensor output = node.Output;
            if (output.Grad is { } outputGrad && node.BackwardFunction is { } backward)
            {
                backward(outputGrad);
            }

            // Gradients of intermediate results are not kept, as in PyTorch, and neither are the results themselves:
            // every node that reads this output comes later on the tape, so has already run.
            output.ZeroGrad();
            output.Node = null;
            node.Release();
            if (!ReferenceEquals(output, root) && !output.KeepAfterBackward)
            {
                output.Dispose();
            }
        }
    }

    private static List<GradNode> ReachableNodes(Tensor root)
    {
        var nodes = new List<GradNode>();
        var seen = new HashSet<GradNode>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<GradNode>();
        if (root.Node is { } first)
        {
            pending.Push(first);
            seen.Add(first);
        }

        while (pending.Count > 0)
        {
            GradNode node = pending.Pop();
            nodes.Add(node);
            foreach (Tensor input in node.Inputs)
            {
                if (input.Node is { } parent && seen.Add(parent))
                {
                    pending.Push(parent);
                }
            }
        }

        return nodes;
    }
}
