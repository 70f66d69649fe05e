using System.Runtime.InteropServices;

namespace SlidePlugin.Engine.Interop;

/// <summary>
/// Raw externs of OpenBLAS 0.3 (cblas.h, Debian libopenblas0): single-precision GEMM and the thread controls.
/// Matrices are row-major throughout the engine, so every call passes <see cref="RowMajor"/>.
/// </summary>
internal static partial class OpenBlasNative
{
    /// <summary>CblasRowMajor.</summary>
    public const int RowMajor = 101;

    /// <summary>CblasNoTrans.</summary>
    public const int NoTrans = 111;

    /// <summary>CblasTrans.</summary>
    public const int Trans = 112;

    /// <summary>The environment variable a DYNAMIC_ARCH OpenBLAS reads once, when it loads, to pick its kernels.</summary>
    public const string CoreTypeVariable = "OPENBLAS_CORETYPE";

    [LibraryImport(Libraries.OpenBlas, EntryPoint = "cblas_sgemm")]
    internal static unsafe partial void Sgemm(int order, int transA, int transB, int m, int n, int k,
        float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Libraries.OpenBlas, EntryPoint = "openblas_set_num_threads")]
    internal static partial void SetNumThreads(int threads);

    [LibraryImport(Libraries.OpenBlas, EntryPoint = "openblas_get_num_threads")]
    internal static partial int GetNumThreads();

    [LibraryImport(Libraries.OpenBlas, EntryPoint = "openblas_get_corename")]
    internal static partial IntPtr GetCoreName();

    // .NET keeps its own copy of the environment on Unix; OpenBLAS reads the C library's.
    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int SetNativeEnvironment(string name, string value, int overwrite);
}
