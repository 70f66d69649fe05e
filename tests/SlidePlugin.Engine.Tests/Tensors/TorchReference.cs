using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using System.Text.Json;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Tensors;

/// <summary>
/// Runs tests/reference/torch_reference.py (Debian's python3-torch) once over every case of
/// <see cref="ReferenceCases"/>, and holds what PyTorch computed, by case name.
/// </summary>
public sealed class TorchReferenceFixture : IAsyncLifetime
{
    private readonly Dictionary<string, IReadOnlyDictionary<string, Tensor>> _results = new(StringComparer.Ordinal);

    /// <summary>The folder holding the cases, PyTorch's results and the checkpoints both sides wrote.</summary>
    public string Folder { get; } = Directory.CreateTempSubdirectory("slideplugin-torch").FullName;

    /// <summary>What PyTorch wrote for <paramref name="caseName"/>.</summary>
    public IReadOnlyDictionary<string, Tensor> Result(string caseName) => _results[caseName];

    public async Task InitializeAsync()
    {
        foreach (ReferenceCase referenceCase in ReferenceCases.All)
        {
            referenceCase.Write(Folder);
        }

        await ExternalProcess.RunReferenceScriptAsync("torch_reference.py", Folder);
        foreach (ReferenceCase referenceCase in ReferenceCases.All)
        {
            _results[referenceCase.Name] = SafeTensors.Load(Path.Combine(Folder, referenceCase.Name + ".torch.safetensors")).ToTensors();
        }
    }

    public Task DisposeAsync()
    {
        // SLIDEPLUGIN_KEEP_REFERENCE=1 keeps the cases and PyTorch's results for a look at a failure.
        if (Environment.GetEnvironmentVariable("SLIDEPLUGIN_KEEP_REFERENCE") != "1")
        {
            Directory.Delete(Folder, recursive: true);
        }

        return Task.CompletedTask;
    }
}

/// <summary>One computation given to PyTorch: tensors and parameters in, named results out.</summary>
public abstract record ReferenceCase(string Name, string Kind, IReadOnlyDictionary<string, Tensor> Tensors, object Parameters)
{
    /// <summary>Writes NAME.case.safetensors (and whatever else the case needs) into <paramref name="folder"/>.</summary>
    public virtual void Write(string folder) =>
        SafeTensors.Save(Path.Combine(folder, Name + ".case.safetensors"), Tensors, new Dictionary<string, string>
        {
            ["kind"] = Kind,
            ["params"] = JsonSerializer.Serialize(Parameters, ReferenceCases.Json),
        });

    public override string ToString() => Name;
}

/// <summary>Comparison of our numbers with PyTorch's.</summary>
internal static class Reference
{
    /// <summary>The stated tolerance: ‖ours − torch‖∞ ≤ 1e-4 · max(‖torch‖∞, 1e-5) (float32 on both sides).</summary>
    public const double RelativeTolerance = 1e-4;

    /// <summary>
    /// Below this magnitude a reference value is float32 rounding noise of sums of order-one terms, not signal: the
    /// gradient of the attention bias, for one, is exactly zero in exact arithmetic (softmax ignores a shift).
    /// </summary>
    public const double NoiseFloor = 1e-5;

    /// <summary>
    /// Asserts <paramref name="actual"/> matches PyTorch's float32 result <c>results[key]</c> within 1e-4, or, where
    /// float32 arithmetic cannot promise that, is no more than twice as far from PyTorch's float64 result
    /// <c>results[key@f64]</c> as float32 arithmetic itself may land: PyTorch's float32 result and, for Adam,
    /// <c>adam.spread.*</c> (the same steps on eight reorderings of the bag, and in float64 with every ReLU and
    /// max-pool kink within float32 resolution taken the other way). Adam divides each gradient element by its own
    /// magnitude, so rounding noise in a gradient that is zero in exact arithmetic reaches the parameters; and where a
    /// pooling window's two largest values are within rounding, the BLAS kernel's summation order decides which takes
    /// the gradient (gated_ucsb_rgb32 under OpenBLAS' Haswell kernels: one window at step 2 moves conv2's weights by
    /// 3.4e-3 and conv1's by 8.8e-4 of their size, and the flipped float64 run moves them by the same).
    /// </summary>
    public static void AssertCloseToPyTorch(string what, IReadOnlyDictionary<string, Tensor> results, string key, Tensor actual)
    {
        Tensor torch32 = results[key], torch64 = results[key + "@f64"];
        double fromTorch = RelativeError(torch32, actual);
        double fromExact = RelativeError(torch64, actual);
        double float32FromExact = RelativeError(torch64, torch32);
        string spreadKey = key.Replace("adam.", "adam.spread.", StringComparison.Ordinal);
        if (key.StartsWith("adam.", StringComparison.Ordinal) && results.TryGetValue(spreadKey, out Tensor? spread))
        {
            float largest = torch64.Data.Length == 0 ? 0 : TensorPrimitives.MaxMagnitude(torch64.Data);
            float farthest = spread.Data.Length == 0 ? 0 : TensorPrimitives.MaxMagnitude(spread.Data);
            float32FromExact = Math.Max(float32FromExact, farthest / Math.Max(largest, NoiseFloor));
        }

        Assert.True(fromTorch <= RelativeTolerance || fromExact <= 2 * float32FromExact,
            $"{what}: relative error {fromTorch:E2} from PyTorch float32 (> {RelativeTolerance:E0}); {fromExact:E2} from float64, " +
            $"where float32 gets to {float32FromExact:E2} of float64.");
    }

    /// <summary>‖actual − expected‖∞ / max(‖expected‖∞, <see cref="NoiseFloor"/>).</summary>
    public static double RelativeError(Tensor expected, Tensor actual)
    {
        ReadOnlySpan<float> e = expected.Data, a = actual.Data;
        double largest = 0, worst = 0;
        for (int i = 0; i < e.Length; i++)
        {
            largest = Math.Max(largest, Math.Abs(e[i]));
            worst = Math.Max(worst, Math.Abs((double)e[i] - a[i]));
        }

        return worst / Math.Max(largest, NoiseFloor);
    }

    /// <summary>Asserts <paramref name="actual"/> matches <paramref name="expected"/> within <see cref="RelativeTolerance"/>, norm-wise.</summary>
    public static void AssertClose(string what, Tensor expected, Tensor actual, double tolerance = RelativeTolerance)
    {
        Assert.True(expected.Length == actual.Length,
            $"{what}: {actual.Length} values, PyTorch has {expected.Length} ({Tensor.ShapeText(actual.Shape)} vs {Tensor.ShapeText(expected.Shape)}).");
        ReadOnlySpan<float> e = expected.Data, a = actual.Data;
        double largest = 0, worst = 0;
        int worstIndex = -1;
        for (int i = 0; i < e.Length; i++)
        {
            Assert.False(float.IsNaN(a[i]) && !float.IsNaN(e[i]), $"{what}[{i}] is NaN; PyTorch has {e[i]}.");
            largest = Math.Max(largest, Math.Abs(e[i]));
            double difference = Math.Abs((double)e[i] - a[i]);
            if (difference > worst)
            {
                worst = difference;
                worstIndex = i;
            }
        }

        double relative = worst / Math.Max(largest, NoiseFloor);
        Assert.True(relative <= tolerance,
            $"{what}: relative error {relative:E2} > {tolerance:E0} (at [{worstIndex}]: ours {(worstIndex >= 0 ? a[worstIndex] : 0)}, torch {(worstIndex >= 0 ? e[worstIndex] : 0)}; max |torch| {largest:E3}).");
    }

    /// <summary>A tensor of N(0, 1) values from a seeded generator.</summary>
    public static Tensor Normal(TensorRandom random, params int[] shape)
    {
        Tensor tensor = Tensor.Empty(shape);
        random.FillNormal(tensor.Data);
        return tensor;
    }
}
