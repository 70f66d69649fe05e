using SlidePlugin.Engine.Modules;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Mil;

/// <summary>
/// CLAM's <c>attention_net</c> (Lu et al. 2021), with its state-dict names, so CLAM's checkpoints load unchanged once
/// saved as safetensors:
/// <code>
/// 0 fc(F → L)   1 ReLU   2 Dropout(p)                                  the instance embedding h
/// 3 gated:  attention_a fc(L → D) tanh [Dropout],  attention_b fc(L → D) sigmoid [Dropout],  attention_c fc(D → B)
///   plain:  module: fc(L → D) tanh [Dropout] fc(D → B)
/// </code>
/// B is 1 for CLAM-SB and K for CLAM-MB (one attention branch per class).
/// </summary>
internal sealed class ClamAttentionNet : Module
{
    private readonly Linear _fc;
    private readonly Dropout _dropout;
    private readonly Sequential? _a;
    private readonly Sequential? _b;
    private readonly Linear? _c;
    private readonly Sequential? _plain;

    public ClamAttentionNet(AttentionMilSpec spec, TensorRandom random)
    {
        int l = spec.EmbeddingSize, d = spec.AttentionSize, branches = spec.Branches;
        _fc = RegisterModule("0", new Linear(spec.FeatureSize, l, random));
        RegisterModule("1", new ReLU());
        _dropout = RegisterModule("2", new Dropout(spec.Dropout, random));
        var attention = new Branches();
        RegisterModule("3", attention);
        // CLAM adds the attention's dropout layers only when dropout is on; the plain branch's last index depends on it.
        Layer[] Tail(params Layer[] layers) => spec.Dropout > 0 ? [.. layers, new Dropout(spec.Dropout, random)] : layers;
        if (spec.Attention == MilAttention.Gated)
        {
            _a = attention.Add("attention_a", new Sequential(Tail(new Linear(l, d, random), new Tanh())));
            _b = attention.Add("attention_b", new Sequential(Tail(new Linear(l, d, random), new Sigmoid())));
            _c = attention.Add("attention_c", new Linear(d, branches, random));
        }
        else
        {
            _plain = attention.Add("module", new Sequential([.. Tail(new Linear(l, d, random), new Tanh()), new Linear(d, branches, random)]));
        }
    }

    /// <summary>h = dropout(relu(fc(x))): [N, F] → [N, L].</summary>
    public Tensor Embed(Tensor x)
    {
        Tensor linear = _fc.Forward(x);
        Tensor relu = Functional.Relu(linear);
        Release(linear);
        if (!IsTraining || _dropout.Probability == 0)
        {
            return relu;
        }

        Tensor dropped = _dropout.Forward(relu);
        Release(relu);
        return dropped;
    }

    /// <summary>Raw attention scores: [N, L] → [N, B].</summary>
    public Tensor Score(Tensor h)
    {
        if (_plain is not null)
        {
            return _plain.Forward(h);
        }

        Tensor a = _a!.Forward(h);                  // [N, D]
        Tensor b = _b!.Forward(h);                  // [N, D]
        Tensor gated = Functional.Multiply(a, b);   // [N, D]
        Release(a);
        Release(b);
        Tensor scores = _c!.Forward(gated);         // [N, B]
        Release(gated);
        return scores;
    }

    private static void Release(Tensor tensor)
    {
        if (!GradMode.IsEnabled)
        {
            tensor.Dispose();
        }
    }

    /// <summary>The attention network's own module (Attn_Net_Gated or Attn_Net): a named holder of its parts.</summary>
    private sealed class Branches : Module
    {
        public T Add<T>(string name, T module) where T : Module => RegisterModule(name, module);
    }
}
