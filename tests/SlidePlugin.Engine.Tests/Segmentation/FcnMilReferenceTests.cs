using System.Text.Json;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Engine.Tests.Tensors;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Segmentation;

/// <summary>
/// The FCN and the multi-class MIL loss against PyTorch (tests/reference/torch_fcn_mil.py, Debian python3-torch): the
/// same weights and a random input on both sides; score maps, loss and every parameter gradient within the stated
/// 1e-4 relative tolerance.
/// </summary>
public sealed class FcnMilReferenceTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-fcn").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData(new[] { 2 }, 1, 32, 40)]        // one tag: background + 2 present, 1, 3 and 4 pushed down
    [InlineData(new[] { 1, 3, 4 }, 1, 36, 28)]  // all but one tagged
    [InlineData(new[] { 1, 2, 3, 4 }, 3, 24, 24)] // every class tagged (no absent term), RGB input
    [InlineData(new int[0], 1, 16, 20)]          // background only: every class pushed down
    public async Task Compute_RandomInputAndTags_LogitsLossAndGradientsMatchPyTorch(int[] present, int channels, int height, int width)
    {
        var spec = new FcnSpec { Channels = channels, Classes = 5, Widths = [6, 8, 10] };
        var random = new TensorRandom((ulong)(height * 100 + width));
        var net = new FullyConvolutionalNet(spec, random);
        using Tensor x = Reference.Normal(random, 1, channels, height, width);
        var tensors = new Dictionary<string, Tensor>(net.StateDict()) { ["x"] = x };
        string casePath = Path.Combine(_folder, "case.safetensors"), resultPath = Path.Combine(_folder, "result.safetensors");
        SafeTensors.Save(casePath, tensors, new Dictionary<string, string>
        {
            ["spec"] = JsonSerializer.Serialize(new { channels, classes = spec.Classes, widths = spec.Widths }),
            ["present"] = JsonSerializer.Serialize(present),
        });

        Tensor logits = net.Forward(x).RetainAfterBackward(); // compared after backward, which frees the graph's intermediates
        Tensor loss = MilSegmentationLoss.Compute(logits, present);
        loss.Backward();
        await ExternalProcess.RunReferenceScriptAsync("torch_fcn_mil.py", casePath, resultPath);
        IReadOnlyDictionary<string, Tensor> torch = SafeTensors.Load(resultPath).ToTensors();

        Reference.AssertClose("logits", torch["logits"], logits);
        Reference.AssertClose("loss", torch["loss"], loss);
        foreach ((string name, Tensor parameter) in net.NamedParameters())
        {
            Reference.AssertClose("grad." + name, torch["grad." + name], parameter.Grad!);
        }
    }
}
