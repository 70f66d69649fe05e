using System.Runtime.InteropServices;

namespace SlidePlugin.Engine.Interop;

/// <summary>
/// Raw externs of TurboJPEG 2.1 (turbojpeg.h, Debian libturbojpeg0): JPEG compression without libvips'
/// per-call pipeline, for the tile hot path. Errors: a call returns -1 and <see cref="GetErrorString"/> says why.
/// </summary>
internal static partial class TurboJpegNative
{
    /// <summary>TJPF_RGB.</summary>
    public const int PixelFormatRgb = 0;

    /// <summary>TJPF_GRAY.</summary>
    public const int PixelFormatGray = 6;

    /// <summary>TJSAMP_420: 4:2:0 chroma.</summary>
    public const int Subsample420 = 2;

    /// <summary>TJSAMP_GRAY.</summary>
    public const int SubsampleGray = 3;

    /// <summary>TJFLAG_ACCURATEDCT: TurboJPEG compresses with the fast integer DCT unless told otherwise; libjpeg, PIL and libvips use the accurate one.</summary>
    public const int FlagAccurateDct = 4096;

    [LibraryImport(Libraries.TurboJpeg, EntryPoint = "tjInitCompress")]
    internal static partial IntPtr InitCompress();

    [LibraryImport(Libraries.TurboJpeg, EntryPoint = "tjDestroy")]
    internal static partial int Destroy(IntPtr handle);

    [LibraryImport(Libraries.TurboJpeg, EntryPoint = "tjCompress2")]
    internal static unsafe partial int Compress2(TurboJpegHandle handle, byte* source, int width, int pitch, int height, int pixelFormat,
        ref IntPtr jpegBuffer, ref nuint jpegSize, int subsampling, int quality, int flags);

    [LibraryImport(Libraries.TurboJpeg, EntryPoint = "tjInitDecompress")]
    internal static partial IntPtr InitDecompress();

    [LibraryImport(Libraries.TurboJpeg, EntryPoint = "tjDecompressHeader3")]
    internal static unsafe partial int DecompressHeader3(TurboJpegDecompressor handle, byte* jpeg, nuint jpegSize, out int width, out int height, out int subsampling, out int colorspace);

    /// <summary>Decodes with libjpeg's defaults (accurate integer DCT, smooth upsampling) unless flags say otherwise: the pixels libtiff's and PIL's decoders give.</summary>
    [LibraryImport(Libraries.TurboJpeg, EntryPoint = "tjDecompress2")]
    internal static unsafe partial int Decompress2(TurboJpegDecompressor handle, byte* jpeg, nuint jpegSize, byte* destination, int width, int pitch, int height, int pixelFormat, int flags);

    [LibraryImport(Libraries.TurboJpeg, EntryPoint = "tjFree")]
    internal static partial void Free(IntPtr buffer);

    [LibraryImport(Libraries.TurboJpeg, EntryPoint = "tjGetErrorStr2")]
    internal static partial IntPtr GetErrorString(TurboJpegHandle handle);
}

/// <summary>Owns a TurboJPEG compressor (<c>tjhandle</c>); <c>tjDestroy</c> runs exactly once. Not thread-safe: one per thread.</summary>
internal sealed class TurboJpegHandle : SafeHandle
{
    public TurboJpegHandle() : base(IntPtr.Zero, ownsHandle: true) => SetHandle(TurboJpegNative.InitCompress());

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle() => TurboJpegNative.Destroy(handle) == 0;
}

/// <summary>Owns a TurboJPEG decompressor (<c>tjhandle</c>); <c>tjDestroy</c> runs exactly once. Not thread-safe: one per thread.</summary>
internal sealed class TurboJpegDecompressor : SafeHandle
{
    public TurboJpegDecompressor() : base(IntPtr.Zero, ownsHandle: true) => SetHandle(TurboJpegNative.InitDecompress());

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle() => TurboJpegNative.Destroy(handle) == 0;
}
