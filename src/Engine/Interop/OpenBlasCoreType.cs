using System.Runtime.Intrinsics.X86;

namespace SlidePlugin.Engine.Interop;

/// <summary>
/// Picks OpenBLAS' kernels from the CPU's instruction sets before the library loads. OpenBLAS 0.3.21 chooses
/// by CPU model, and on CPUs it does not know (virtual machines report "Intel Xeon Processor") it falls back to
/// Prescott's SSE3 kernels: sgemm measured 40 GFLOP/s there against 219 with SkylakeX's AVX-512 ones on 2 cores.
/// A value the user set in <c>OPENBLAS_CORETYPE</c> is always kept.
/// </summary>
public static class OpenBlasCoreType
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

    /// <summary>The value of <c>OPENBLAS_CORETYPE</c> found in the environment, or null when the engine chose.</summary>
    public static string? Inherited { get; private set; }

    /// <summary>
    /// A warning when the inherited <c>OPENBLAS_CORETYPE</c> names an older kernel family than this CPU runs, or null.
    /// The setting is kept all the same: some machines set it because other kernels compute wrong results on them.
    /// </summary>
    public static string? SlowerInheritedWarning() => SlowerInheritedWarning(Inherited, ForThisCpu());

    internal static string? SlowerInheritedWarning(string? inherited, string? ours)
    {
        if (inherited is null || ours is null || Generation(inherited) is not { } theirs || Generation(ours) is not { } best || theirs >= best)
        {
            return null;
        }

        return $"{OpenBlasNative.CoreTypeVariable}={inherited} is set in the environment; this CPU also runs OpenBLAS' faster {ours} kernels. " +
               $"Kept as set (a machine may set it because other kernels compute wrong results there); unset it only where {ours} is known to be right.";
    }

    /// <summary>OpenBLAS' x86 kernel families by the widest instructions they use; null for names not listed.</summary>
    private static int? Generation(string coreType) => coreType.ToUpperInvariant() switch
    {
        "PRESCOTT" or "CORE2" or "PENRYN" or "DUNNINGTON" or "ATOM" or "BARCELONA" or "OPTERON" => 0,
        "NEHALEM" or "BOBCAT" => 1,
        "SANDYBRIDGE" or "BULLDOZER" or "PILEDRIVER" or "STEAMROLLER" or "EXCAVATOR" => 2,
        "HASWELL" or "ZEN" => 3,
        "SKYLAKEX" or "COOPERLAKE" or "SAPPHIRERAPIDS" => 4,
        _ => null,
    };

    /// <summary>Sets <c>OPENBLAS_CORETYPE</c> in the C library's environment unless it is set already.</summary>
    internal static void Select()
    {
        if (Environment.GetEnvironmentVariable(OpenBlasNative.CoreTypeVariable) is { Length: > 0 } inherited)
        {
            Inherited = inherited;
            return;
        }

        if (!OperatingSystem.IsLinux())
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
