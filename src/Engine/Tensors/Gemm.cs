using System.Runtime.InteropServices;
using SlidePlugin.Engine.Interop;

namespace SlidePlugin.Engine.Tensors;

/// <summary>
/// Single-precision matrix multiply, row-major: C = alpha·op(A)·op(B) + beta·C with op(A) m×k and op(B) k×n.
/// Every GEMM and convolution of the engine goes through here, so a GPU backend replaces this one seam.
/// </summary>
/// <remarks>
/// OpenBLAS runs single-threaded and the engine splits work itself (<see cref="EngineThreads"/>): OpenBLAS' own
/// threads busy-wait for a while after each call, and on a small machine that spinning took the cores from the
/// engine's next parallel loop (a 2x2 max-pool ran 30x slower right after a GEMM).
/// </remarks>
internal static class Gemm
{
    /// <summary>Below this many multiply-adds one thread is faster than splitting.</summary>
    private const long ParallelThreshold = 1L << 21;

    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C; large ones split into blocks (<see cref="PartsFor"/>) run on
    /// <see cref="EngineThreads.Count"/> threads. The result is the same on any number of threads.
    /// </summary>
    public static void Multiply(
        bool transposeA, bool transposeB, int m, int n, int k,
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, float alpha = 1f, float beta = 0f) =>
        Multiply(transposeA, transposeB, m, n, k, a, b, c, alpha, beta, split: true);

    /// <summary>The same on the calling thread only, for callers that already run in parallel.</summary>
    public static void MultiplySingleThreaded(
        bool transposeA, bool transposeB, int m, int n, int k,
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, float alpha = 1f, float beta = 0f) =>
        Multiply(transposeA, transposeB, m, n, k, a, b, c, alpha, beta, split: false);

    private static unsafe void Multiply(
        bool transposeA, bool transposeB, int m, int n, int k,
        ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, float alpha, float beta, bool split)
    {
        if (m == 0 || n == 0)
        {
            return;
        }

        if (a.Length < (long)m * k || b.Length < (long)k * n || c.Length < (long)m * n)
        {
            throw new ArgumentException($"GEMM operands too small for {m}x{k} · {k}x{n}.");
        }

        EngineThreads.EnsureConfigured();
        fixed (float* pa = &MemoryMarshal.GetReference(a))
        fixed (float* pb = &MemoryMarshal.GetReference(b))
        fixed (float* pc = &MemoryMarshal.GetReference(c))
        {
            var call = new Call(transposeA, transposeB, m, n, k, alpha, beta, (nint)pa, (nint)pb, (nint)pc);
            int parts = split ? PartsFor(m, n, k) : 1;
            if (parts <= 1)
            {
                call.Run(0, m, 0, n);
                return;
            }

            // Split the larger side of C; each part is an independent GEMM on a block of rows or columns.
            bool splitRows = m >= n;
            int size = splitRows ? m : n;
            Parallel.For(0, parts, EngineThreads.ParallelOptions, part =>
            {
                int start = (int)((long)size * part / parts), end = (int)((long)size * (part + 1) / parts);
                if (splitRows)
                {
                    call.Run(start, end, 0, n);
                }
                else
                {
                    call.Run(0, m, start, end);
                }
            });
        }
    }

    /// <summary>
    /// How many blocks of C a GEMM is split into: from its size alone, never from the thread count. OpenBLAS' kernels
    /// round a row differently depending on where it falls in a block (Haswell's edge kernels sum in another order than
    /// its main one), so a split that followed the thread count made results depend on it.
    /// </summary>
    internal static int PartsFor(int m, int n, int k)
    {
        long work = (long)m * n * k;
        if (work < ParallelThreshold)
        {
            return 1;
        }

        // Blocks of at least MinimumPartSize rows (or columns), about ParallelThreshold multiply-adds each, at most MaximumParts.
        long byWork = work / ParallelThreshold;
        return (int)Math.Max(1, Math.Min(Math.Min(byWork, MaximumParts), Math.Max(m, n) / MinimumPartSize));
    }

    /// <summary>Blocks for up to 8 threads: each block packs the shared operand again, so more cost more than they gain.</summary>
    private const int MaximumParts = 8;

    /// <summary>The smallest block of rows or columns worth a GEMM call of its own (a few of the kernels' unrolls).</summary>
    private const int MinimumPartSize = 32;

    /// <summary>One GEMM over raw pointers, runnable on a block [rows) × [columns) of C.</summary>
    private readonly record struct Call(bool TransposeA, bool TransposeB, int M, int N, int K, float Alpha, float Beta, nint A, nint B, nint C)
    {
        public unsafe void Run(int rowStart, int rowEnd, int columnStart, int columnEnd)
        {
            int lda = TransposeA ? M : K, ldb = TransposeB ? K : N;
            // Row i of op(A) starts at A + i·lda (stored m×k) or at column i (stored k×m); column j of op(B) likewise.
            float* a = (float*)A + (TransposeA ? rowStart : (long)rowStart * lda);
            float* b = (float*)B + (TransposeB ? (long)columnStart * ldb : columnStart);
            float* c = (float*)C + ((long)rowStart * N) + columnStart;
            int rows = rowEnd - rowStart, columns = columnEnd - columnStart;
            if (K == 0)
            {
                // BLAS skips the product when k is 0; C still becomes beta·C.
                for (int i = 0; i < rows; i++)
                {
                    new Span<float>(c + ((long)i * N), columns).Clear();
                }

                return;
            }

            OpenBlasNative.Sgemm(OpenBlasNative.RowMajor,
                TransposeA ? OpenBlasNative.Trans : OpenBlasNative.NoTrans,
                TransposeB ? OpenBlasNative.Trans : OpenBlasNative.NoTrans,
                rows, columns, K, Alpha, a, lda, b, ldb, Beta, c, N);
        }
    }
}

/// <summary>
/// How many threads the engine computes with: its own parallel loops, which also split large GEMMs (OpenBLAS
/// itself runs single-threaded). Defaults to the processor count, or <c>SLIDEPLUGIN_THREADS</c> when set.
/// </summary>
public static class EngineThreads
{
    /// <summary>The environment variable that sets the default thread count.</summary>
    public const string Variable = "SLIDEPLUGIN_THREADS";

    private static int s_count;
    private static int s_applied;
    private static ParallelOptions s_parallelOptions = new();

    /// <summary>The configured thread count.</summary>
    public static int Count
    {
        get
        {
            EnsureConfigured();
            return s_count;
        }
    }

    /// <summary>Options for the engine's parallel loops.</summary>
    internal static ParallelOptions ParallelOptions
    {
        get
        {
            EnsureConfigured();
            return s_parallelOptions;
        }
    }

    /// <summary>Sets the number of threads for the engine's loops and GEMMs.</summary>
    public static void Set(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        s_count = threads;
        s_parallelOptions = new ParallelOptions { MaxDegreeOfParallelism = threads };
        OpenBlasNative.SetNumThreads(1);
        Volatile.Write(ref s_applied, 1);
    }

    /// <summary>The OpenBLAS kernel family in use (e.g. SkylakeX), for logs and benchmarks.</summary>
    public static string BlasCoreName() => Marshal.PtrToStringUTF8(OpenBlasNative.GetCoreName()) ?? "unknown";

    /// <summary>
    /// The thread count the engine uses or will use: <see cref="Count"/> without configuring anything, so it does not
    /// load OpenBLAS (a server sizes its thread pool with it before any model runs).
    /// </summary>
    public static int Planned => Volatile.Read(ref s_applied) != 0 ? s_count : FromEnvironment();

    internal static void EnsureConfigured()
    {
        if (Volatile.Read(ref s_applied) == 0)
        {
            Set(FromEnvironment());
        }
    }

    private static int FromEnvironment() =>
        int.TryParse(Environment.GetEnvironmentVariable(Variable), out int configured) && configured > 0 ? configured : Environment.ProcessorCount;
}
