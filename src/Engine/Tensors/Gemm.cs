using System.Runtime.InteropServices;
using SlidePlugin.Engine.Interop;

namespace SlidePlugin.Engine.Tensors;

/// <summary>
/// Single-precision matrix multiply, row-major: C = alpha·op(A)·op(B) + beta·C with op(A) m×k and op(B) k×n.
/// Every GEMM and convolution of the engine goes through here, so a GPU backend replaces this one seam.
/// </summary>
internal static class Gemm
{
    public static unsafe void Multiply(
        bool transposeA, bool transposeB, int m, int n, int k,
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, float alpha = 1f, float beta = 0f)
    {
        if (m == 0 || n == 0)
        {
            return;
        }

        if (a.Length < (long)m * k || b.Length < (long)k * n || c.Length < (long)m * n)
        {
            throw new ArgumentException($"GEMM operands too small for {m}x{k} · {k}x{n}.");
        }

        if (k == 0)
        {
            // BLAS leaves C alone when k is 0 only for beta 1; make the meaning explicit.
            c[..(m * n)].Clear();
            return;
        }

        EngineThreads.EnsureConfigured();
        fixed (float* pa = &MemoryMarshal.GetReference(a))
        fixed (float* pb = &MemoryMarshal.GetReference(b))
        fixed (float* pc = &MemoryMarshal.GetReference(c))
        {
            OpenBlasNative.Sgemm(OpenBlasNative.RowMajor,
                transposeA ? OpenBlasNative.Trans : OpenBlasNative.NoTrans,
                transposeB ? OpenBlasNative.Trans : OpenBlasNative.NoTrans,
                m, n, k, alpha,
                pa, transposeA ? m : k,
                pb, transposeB ? k : n,
                beta, pc, n);
        }
    }
}

/// <summary>
/// How many threads the engine computes with: OpenBLAS' GEMM threads and the engine's own parallel loops.
/// Defaults to the processor count, or <c>SLIDEPLUGIN_THREADS</c> when set.
/// </summary>
public static class EngineThreads
{
    /// <summary>The environment variable that sets the default thread count.</summary>
    public const string Variable = "SLIDEPLUGIN_THREADS";

    private static int s_count;
    private static int s_applied;

    /// <summary>The configured thread count.</summary>
    public static int Count
    {
        get
        {
            EnsureConfigured();
            return s_count;
        }
    }

    private static ParallelOptions s_parallelOptions = new();

    /// <summary>Options for the engine's parallel loops.</summary>
    internal static ParallelOptions ParallelOptions
    {
        get
        {
            EnsureConfigured();
            return s_parallelOptions;
        }
    }

    /// <summary>Sets the number of threads for GEMM and the engine's loops.</summary>
    public static void Set(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        s_count = threads;
        s_parallelOptions = new ParallelOptions { MaxDegreeOfParallelism = threads };
        OpenBlasNative.SetNumThreads(threads);
        Volatile.Write(ref s_applied, 1);
    }

    /// <summary>The OpenBLAS kernel family in use (e.g. SKYLAKEX), for logs and benchmarks.</summary>
    public static string BlasCoreName() => Marshal.PtrToStringUTF8(OpenBlasNative.GetCoreName()) ?? "unknown";

    internal static void EnsureConfigured()
    {
        if (Volatile.Read(ref s_applied) == 0)
        {
            Set(int.TryParse(Environment.GetEnvironmentVariable(Variable), out int configured) && configured > 0
                ? configured
                : Environment.ProcessorCount);
        }
    }
}
