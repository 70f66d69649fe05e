using SlidePlugin.Engine.Interop;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Benchmarks;

/// <summary>What a benchmark's figures depend on, printed above every table: machines of one kind differ in CPU and BLAS kernel.</summary>
internal static class MachineInfo
{
    public static string Line()
    {
        string cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU"
            : "unknown CPU";
        string kernel = EngineThreads.BlasCoreName();
        string source = OpenBlasCoreType.Inherited is { } inherited
            ? $"OPENBLAS_CORETYPE={inherited} from the environment"
            : "chosen by the engine";
        string l2 = Environment.GetEnvironmentVariable("OPENBLAS_L2_SIZE") is { Length: > 0 } size ? $", OPENBLAS_L2_SIZE={size}" : "";
        return $"machine: {cpu}, {Environment.ProcessorCount} cores; OpenBLAS kernel {kernel} ({source}{l2})";
    }
}
