using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Optim;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Tests.Tensors;

/// <summary>
/// Our layers and models against PyTorch 1.13 on the same inputs and weights (tests/reference/torch_reference.py):
/// outputs, attention, losses, every gradient, and parameters after five Adam and five SGD steps, each within a
/// relative error of 1e-4 (<see cref="Reference.RelativeTolerance"/>).
/// </summary>
public sealed class TorchReferenceTests(TorchReferenceFixture torch) : IClassFixture<TorchReferenceFixture>
{
    public static TheoryData<string> OpNames => [.. ReferenceCases.Ops.Select(c => c.Name)];

    public static TheoryData<string> ModelNames => [.. ReferenceCases.Models.Select(c => c.Name)];

    public static TheoryData<string> TorchInitNames => [.. ReferenceCases.TorchInits.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(OpNames))]
    public void Functional_SameInputsAsPyTorch_OutputAndGradientsMatch(string name)
    {
        OpCase op = ReferenceCases.Ops.Single(c => c.Name == name);
        IReadOnlyDictionary<string, Tensor> expected = torch.Result(name);
        var inputs = op.Tensors.Where(t => t.Key != "grad_out").ToDictionary(t => t.Key, t => t.Value.Detach());
        foreach (string input in op.Grad)
        {
            inputs[input].RequiresGrad = true;
        }

        Tensor output = op.Ours(inputs);
        Reference.AssertClose($"{name} output", expected["out"], output);
        output.Backward(op.Tensors["grad_out"]);
        foreach (string input in op.Grad)
        {
            Assert.True(inputs[input].Grad is not null, $"{name}: no gradient reached '{input}'.");
            Reference.AssertClose($"{name} gradient of {input}", expected["grad." + input], inputs[input].Grad!);
        }

        foreach (string state in new[] { "running_mean", "running_var" }.Where(expected.ContainsKey))
        {
            Reference.AssertClose($"{name} {state}", expected[state], inputs[state]);
        }
    }

    [Theory]
    [MemberData(nameof(ModelNames))]
    public void AttentionMil_SameWeightsAndBag_PredictionAttentionLossAndGradientsMatch(string name)
    {
        ModelCase model = ReferenceCases.Models.Single(c => c.Name == name);
        IReadOnlyDictionary<string, Tensor> expected = torch.Result(name);
        AttentionMil ours = model.NewModel();

        MilOutput output = ours.Forward(model.Tensors["bag"]);
        Tensor loss = ours.Loss(output, model.Label);
        loss.Backward();

        Reference.AssertClose($"{name} probabilities", expected["probabilities"], output.Probabilities);
        Reference.AssertClose($"{name} attention", expected["attention"], output.Attention);
        Assert.Equal(1f, output.Attention.Data.ToArray().Sum(), 4);
        Reference.AssertClose($"{name} loss", expected["loss"], loss);
        foreach ((string parameter, Tensor value) in ours.NamedParameters())
        {
            if (parameter is "attention.2.bias" or "attention_weights.bias" or "attention_net.3.attention_c.bias" or "attention_net.3.module.2.bias")
            {
                // Zero in exact arithmetic (softmax ignores a shift of every score; CLAM-MB: of each branch's), so both sides
                // hold rounding noise.
                Assert.All(value.Grad!.Data.ToArray(), g => Assert.InRange(MathF.Abs(g), 0f, 1e-6f));
                Assert.All(expected["grad." + parameter].Data.ToArray(), g => Assert.InRange(MathF.Abs(g), 0f, 1e-6f));
                continue;
            }

            // A CLAM instance classifier of another class is not in the graph: no gradient, as PyTorch's None.
            using Tensor none = Tensor.Zeros([.. value.Shape]);
            Reference.AssertClose($"{name} gradient of {parameter}", expected["grad." + parameter], value.Grad ?? none);
        }
    }

    [Theory]
    [MemberData(nameof(ModelNames))]
    public void Adam_FiveStepsOnOneBag_ParametersMatchTorchOptimAdam(string name) =>
        AssertTrainedLikePyTorch(name, "adam", model => new Adam(model.Parameters(), learningRate: 5e-4f, beta1: 0.9f, beta2: 0.999f, weightDecay: 1e-4f));

    [Theory]
    [MemberData(nameof(ModelNames))]
    public void Adam_PyTorchsGradients_ParametersMatchTorchOptimAdam(string name)
    {
        // The optimizer alone: fed each step's gradients as PyTorch computed them, our Adam must take PyTorch's steps.
        // Both sides then round the same float32 updates, so only a few units in the last place may differ.
        ModelCase model = ReferenceCases.Models.Single(c => c.Name == name);
        IReadOnlyDictionary<string, Tensor> expected = torch.Result(name);
        AttentionMil ours = model.NewModel();
        Dictionary<string, float> initialLargest = ours.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.Data.ToArray().Max(MathF.Abs));
        var adam = new Adam(ours.Parameters(), learningRate: 5e-4f, beta1: 0.9f, beta2: 0.999f, weightDecay: 1e-4f);
        for (int step = 0; step < 5; step++)
        {
            adam.ZeroGrad();
            foreach ((string parameter, Tensor value) in ours.NamedParameters())
            {
                // Left out where PyTorch had no gradient: the parameter then keeps none, and Adam skips it as PyTorch does.
                if (expected.TryGetValue($"adam.step{step}.grad.{parameter}", out Tensor? gradient))
                {
                    gradient.Data.CopyTo(value.GradData());
                }
            }

            adam.Step();
        }

        foreach ((string parameter, Tensor value) in ours.NamedParameters())
        {
            // Units in the last place of the values the parameter passed through: a bias that went from 2e-3 to 2e-5 carries
            // the rounding of 2e-3, so the tolerance is relative to the larger of its start and its end.
            float largest = expected["adam." + parameter].Data.ToArray().Max(MathF.Abs);
            double scale = Math.Max(1, initialLargest[parameter] / Math.Max(largest, 1e-30f));
            Reference.AssertClose($"{name} {parameter} after 5 adam steps on PyTorch's gradients", expected["adam." + parameter], value, tolerance: 1e-6 * scale);
        }
    }

    [Theory]
    [MemberData(nameof(ModelNames))]
    public void Sgd_FiveStepsWithMomentum_ParametersMatchTorchOptimSgd(string name) =>
        AssertTrainedLikePyTorch(name, "sgd", model => new Sgd(model.Parameters(), learningRate: 1e-2f, momentum: 0.9f, weightDecay: 1e-4f));

    [Theory]
    [MemberData(nameof(TorchInitNames))]
    public void ModelCheckpoint_WeightsWrittenByPyTorch_LoadAndPredictTheSame(string name)
    {
        TorchInitCase init = ReferenceCases.TorchInits.Single(c => c.Name == name);
        IReadOnlyDictionary<string, Tensor> expected = torch.Result(name);
        var model = new AttentionMil(init.Spec, new TensorRandom(99));
        ModelCheckpoint.LoadWeights(model, SafeTensors.Load(Path.Combine(torch.Folder, name + ".weights.safetensors")), name);
        model.Eval();

        using (GradMode.NoGrad())
        {
            MilOutput output = model.Forward(init.Tensors["bag"]);
            Reference.AssertClose($"{name} probabilities", expected["probabilities"], output.Probabilities);
            Reference.AssertClose($"{name} attention", expected["attention"], output.Attention);
        }
    }

    private void AssertTrainedLikePyTorch(string name, string optimizerName, Func<AttentionMil, Optimizer> optimizerFor)
    {
        ModelCase model = ReferenceCases.Models.Single(c => c.Name == name);
        IReadOnlyDictionary<string, Tensor> expected = torch.Result(name);
        AttentionMil ours = model.NewModel();
        Optimizer optimizer = optimizerFor(ours);
        for (int step = 0; step < 5; step++)
        {
            optimizer.ZeroGrad();
            ours.Loss(ours.Forward(model.Tensors["bag"]), model.Label).Backward();
            optimizer.Step();
        }

        foreach ((string parameter, Tensor value) in ours.NamedParameters())
        {
            Reference.AssertCloseToPyTorch($"{name} {parameter} after 5 {optimizerName} steps", expected, $"{optimizerName}.{parameter}", value);
        }
    }
}
