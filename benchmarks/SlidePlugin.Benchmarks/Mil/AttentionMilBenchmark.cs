using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Optim;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Benchmarks.Mil;

/// <summary>
/// Gated A-MIL, ours against PyTorch 1.13 (Debian), each in a process of its own so peak memory is the workload's:
/// a bag of 400 RGB 28x28 patches and a bag of 10,000 feature vectors of 1024, inference and one training step
/// (forward, clamped BCE, backward, Adam). Both sides run in this process's environment as it is: where it sets
/// OPENBLAS_CORETYPE (some machines do, because other kernels compute wrong results there), both use that kernel;
/// where it does not, each chooses its own, and the table names both.
/// </summary>
internal static class AttentionMilBenchmark
{
    private static readonly Dictionary<string, (AttentionMilSpec Spec, int[] Shape)> Workloads = new()
    {
        ["patches"] = (new AttentionMilSpec { Attention = MilAttention.Gated, Channels = 3, PatchSize = 28 }, [400, 3, 28, 28]),
        ["features"] = (new AttentionMilSpec
        {
            Attention = MilAttention.Gated, Input = MilInput.Features, FeatureSize = 1024, EmbeddingSize = 512, AttentionSize = 256,
        }, [10000, 1024]),
    };

    public static async Task<int> RunAsync(int threads, int iterations)
    {
        Console.WriteLine($"Gated A-MIL, {threads} threads each side, median of {iterations} after 3 warm-up runs; " +
                          $"{Environment.ProcessorCount} cores, OpenBLAS core {EngineThreads.BlasCoreName()} here.");
        Console.WriteLine();
        Console.WriteLine($"{"workload",-9} {"side",-32} {"infer ms",9} {"train ms",9} {"peak MiB",9}   {"infer x",8} {"train x",8} {"memory",7}");
        foreach (string workload in Workloads.Keys)
        {
            Result ours = await RunWorkerAsync(workload, threads, iterations);
            Result torch = await RunTorchAsync(workload, threads, iterations);
            Print(workload, $"SlidePlugin engine ({ours.BlasCore})", ours, null);
            Print(workload, $"PyTorch 1.13 ({torch.BlasCore})", torch, ours);
        }

        return 0;
    }

    /// <summary>The worker: one workload in this process, printing the same JSON as torch_amil.py.</summary>
    public static int RunWorker(string workload, int threads, int iterations)
    {
        EngineThreads.Set(threads);
        (AttentionMilSpec spec, int[] shape) = Workloads[workload];
        var random = new TensorRandom(0);
        var model = new AttentionMil(spec, random);
        Tensor bag = Tensor.Empty(shape);
        random.FillUniform(bag.Data, 0f, 1f);
        var adam = new Adam(model.Parameters(), learningRate: 5e-4f, beta1: 0.9f, beta2: 0.999f, weightDecay: 1e-4f);

        void Infer()
        {
            model.Eval();
            using (GradMode.NoGrad())
            {
                model.Forward(bag).Dispose();
            }
        }

        void Train()
        {
            model.Train();
            adam.ZeroGrad();
            model.Loss(model.Forward(bag), 1).Backward();
            adam.Step();
        }

        List<double> inference = Timed(Infer, iterations), training = Timed(Train, iterations);
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["inference_ms"] = inference,
            ["train_ms"] = training,
            ["peak_rss_mib"] = PeakMemory.MiB(),
            ["blas_core"] = EngineThreads.BlasCoreName(),
        }));
        return 0;
    }

    private static List<double> Timed(Action step, int iterations)
    {
        for (int i = 0; i < 3; i++)
        {
            step();
        }

        var times = new List<double>();
        for (int i = 0; i < iterations; i++)
        {
            long start = Stopwatch.GetTimestamp();
            step();
            times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        return times;
    }

    private sealed record Result(double InferenceMs, double TrainMs, double PeakMiB, string BlasCore);

    private static async Task<Result> RunWorkerAsync(string workload, int threads, int iterations)
    {
        string self = Path.Combine(AppContext.BaseDirectory, "SlidePlugin.Benchmarks.dll");
        return Parse(await RunAsync("dotnet", [self, "amil-worker", workload, Text(threads), Text(iterations)]));
    }

    private static async Task<Result> RunTorchAsync(string workload, int threads, int iterations) =>
        Parse(await RunAsync("/usr/bin/python3", [Path.Combine(AppContext.BaseDirectory, "torch_amil.py"), workload, Text(threads), Text(iterations)]));

    private static async Task<string> RunAsync(string fileName, string[] arguments)
    {
        var startInfo = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(startInfo)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return process.ExitCode == 0 ? stdout : throw new InvalidOperationException($"{fileName} failed: {await stderr}");
    }

    private static Result Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        JsonElement root = document.RootElement;
        return new Result(
            Median(root.GetProperty("inference_ms")), Median(root.GetProperty("train_ms")),
            root.GetProperty("peak_rss_mib").GetDouble(), root.GetProperty("blas_core").GetString() ?? "?");
    }

    private static double Median(JsonElement values)
    {
        double[] sorted = values.EnumerateArray().Select(v => v.GetDouble()).Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    private static void Print(string workload, string side, Result result, Result? ours)
    {
        string ratios = ours is null
            ? ""
            : $"{result.InferenceMs / ours.InferenceMs,8:F2} {result.TrainMs / ours.TrainMs,8:F2} {ours.PeakMiB / result.PeakMiB,7:F2}";
        Console.WriteLine($"{workload,-9} {side,-32} {result.InferenceMs,9:F1} {result.TrainMs,9:F1} {result.PeakMiB,9:F0}   {ratios}");
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
}
