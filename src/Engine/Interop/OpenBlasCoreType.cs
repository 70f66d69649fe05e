using System.Runtime.Intrinsics.X86;

namespace SlidePlugin.Engine.Interop;

/// <summary>
/// Picks OpenBLAS' kernels from the CPU's instruction sets before the library loads. OpenBLAS 0.3.21 chooses
/// by CPU model, and on CPUs it does not know (virtual machines report "Intel Xeon Processor") it falls back to
/// Prescott's SSE3 kernels: sgemm measured 40 GFLOP/s there against 219 with SkylakeX's AVX-512 ones on 2 cores.
/// A value the user set in <c>OPENBLAS_CORETYPE</c> is always kept.
/// </summary>
internal static class OpenBlasCoreType
{
    /// <summary>The core type chosen for this CPU, or null to let OpenBLAS decide.</summary>
    public static string? ForThisCpu()
    {
        if (Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported)
        {
            return "SkylakeX";
        }

        return Avx2.IsSupported && Fma.IsSupported ? "Haswell" : null;
    }

    /// <summary>Sets <c>OPENBLAS_CORETYPE</c> in the C library's environment unless it is set already.</summary>
    public static void Select()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(OpenBlasNative.CoreTypeVariable) is { Length: > 0 })
        {
            return;
        }

        if (ForThisCpu() is { } coreType)
        {
            _ = OpenBlasNative.SetNativeEnvironment(OpenBlasNative.CoreTypeVariable, coreType, overwrite: 0);
            Environment.SetEnvironmentVariable(OpenBlasNative.CoreTypeVariable, coreType);
        }
    }
}
