using System.Runtime.InteropServices;
using SlidePlugin.Engine.Interop;

namespace SlidePlugin.Engine.Imaging;

/// <summary>Resampling kernels of libvips (VipsKernel), for <see cref="ImageCodec.Resize"/>.</summary>
public enum ResizeKernel
{
    /// <summary>Nearest neighbour.</summary>
    Nearest = 0,
    /// <summary>Linear.</summary>
    Linear = 1,
    /// <summary>Cubic (Catmull-Rom).</summary>
    Cubic = 2,
    /// <summary>Mitchell.</summary>
    Mitchell = 3,
    /// <summary>Lanczos, two lobes.</summary>
    Lanczos2 = 4,
    /// <summary>Lanczos, three lobes: libvips' default, sharp and area-correct when shrinking.</summary>
    Lanczos3 = 5,
}

/// <summary>An image whose header announces more pixels than the caller allows; refused before decoding.</summary>
public sealed class ImageTooLargeException : Exception
{
    /// <summary>Creates the exception for an image of <paramref name="width"/> x <paramref name="height"/> against <paramref name="limit"/> pixels.</summary>
    public ImageTooLargeException(long width, long height, long limit)
        : base(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"The image is {width}x{height} ({width * height} pixels); at most {limit} pixels are decoded per image."))
    {
        Width = width;
        Height = height;
        Limit = limit;
    }

    /// <summary>Creates the exception.</summary>
    public ImageTooLargeException() { }

    /// <summary>Creates the exception.</summary>
    public ImageTooLargeException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public ImageTooLargeException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Width the image announced.</summary>
    public long Width { get; }

    /// <summary>Height the image announced.</summary>
    public long Height { get; }

    /// <summary>The most pixels allowed.</summary>
    public long Limit { get; }
}

/// <summary>An image could not be decoded, encoded or resized; the message carries libvips' reason.</summary>
public sealed class ImageCodecException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ImageCodecException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public ImageCodecException() { }

    /// <summary>Creates the exception.</summary>
    public ImageCodecException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// Image decoding, encoding and resizing through libvips (Debian libvips42): PNG, JPEG, TIFF and
/// whatever else libvips loads. Decoded images are 8-bit sRGB (or grey), with alpha when the file has it.
/// Safe to call from many threads.
/// </summary>
public static class ImageCodec
{
    private static readonly Lazy<bool> Initialized = new(() =>
    {
        if (VipsNative.Init("slideplugin") != 0)
        {
            throw new ImageCodecException($"libvips failed to start: {TakeError()}");
        }

        // libvips' operation cache pays off for repeated pipelines on files; here every call is on fresh
        // pixels, so it would only hold recent images (memory) and cost a hash lookup per call.
        VipsNative.CacheSetMax(0);

        // No liborc SIMD programs (VIPS_NOVECTOR): the test host crashed twice with SIGSEGV in orc_code_free, freeing a
        // resize's vector program (vips_vector_free) while other threads ran libvips, a known class of orc races. It
        // costs about 9 % of analysis throughput (6.2k -> 5.6k tiles/s on the 20000² slide); a crash loses more.
        VipsNative.VectorSetEnabled(0);

        return true;
    });

    /// <summary>
    /// Decodes an encoded image (PNG, JPEG, TIFF, ...). Its header is read first: an image of more than
    /// <paramref name="maxPixels"/> pixels is refused before any pixel is decoded (a 900 KB PNG can hold 900 megapixels).
    /// </summary>
    /// <exception cref="ImageCodecException">The bytes are not an image libvips can decode; the message says why.</exception>
    /// <exception cref="ImageTooLargeException">The header announces more than <paramref name="maxPixels"/> pixels.</exception>
    public static unsafe Raster Decode(ReadOnlySpan<byte> encoded, long maxPixels = long.MaxValue)
    {
        EnsureInitialized();
        if (encoded.IsEmpty)
        {
            throw new ImageCodecException("Cannot decode an empty buffer.");
        }

        IntPtr raw;
        fixed (byte* data = encoded)
        {
            // libvips may read the buffer lazily, so the image is made into memory before `data` is unpinned.
            // fail=true: a truncated or corrupt file is an error, not a silently grey-filled image.
            raw = VipsNative.ImageNewFromBuffer(data, (nuint)encoded.Length, "fail=true", IntPtr.Zero);
            if (raw == IntPtr.Zero)
            {
                throw new ImageCodecException($"Cannot decode the image: {TakeError()}");
            }

            using var image = new VipsImageHandle(raw);
            int width = VipsNative.ImageGetWidth(image), height = VipsNative.ImageGetHeight(image);
            if ((long)width * height > maxPixels)
            {
                throw new ImageTooLargeException(width, height, maxPixels);
            }

            using VipsImageHandle normalized = ToEightBit(image);
            return ToRaster(normalized);
        }
    }

    /// <summary>
    /// Encodes as baseline JPEG at <paramref name="quality"/> (1-100) with 4:2:0 chroma subsampling (as PIL and
    /// tile pipelines write it), through TurboJPEG: libjpeg-turbo, as libvips would use, without a libvips pipeline
    /// per call (a 256 px tile in 0.3 ms instead of 0.9). Grey stays grey; alpha, if any, is dropped.
    /// </summary>
    public static unsafe byte[] EncodeJpeg(Raster image, int quality = 90)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfLessThan(quality, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(quality, 100);
        Raster pixels = image.Bands is 2 or 4 ? DropAlpha(image) : image;
        if (pixels.Width == 0 || pixels.Height == 0)
        {
            throw new ImageCodecException($"Cannot encode a {pixels.Width}x{pixels.Height} image as JPEG.");
        }

        TurboJpegHandle compressor = JpegCompressor ??= new TurboJpegHandle();
        bool grey = pixels.Bands == 1;
        IntPtr buffer = IntPtr.Zero;
        nuint length = 0;
        try
        {
            int result;
            fixed (byte* source = pixels.Pixels)
            {
                result = TurboJpegNative.Compress2(compressor, source, pixels.Width, pixels.Width * pixels.Bands, pixels.Height,
                    grey ? TurboJpegNative.PixelFormatGray : TurboJpegNative.PixelFormatRgb, ref buffer, ref length,
                    grey ? TurboJpegNative.SubsampleGray : TurboJpegNative.Subsample420, quality, TurboJpegNative.FlagAccurateDct);
            }

            if (result != 0 || buffer == IntPtr.Zero)
            {
                throw new ImageCodecException($"Cannot encode JPEG: {Marshal.PtrToStringUTF8(TurboJpegNative.GetErrorString(compressor))}");
            }

            var bytes = new byte[(int)length];
            Marshal.Copy(buffer, bytes, 0, bytes.Length);
            return bytes;
        }
        finally
        {
            if (buffer != IntPtr.Zero)
            {
                TurboJpegNative.Free(buffer);
            }
        }
    }

    /// <summary>One TurboJPEG compressor per thread (a handle must not be shared); released by its finalizer when the thread ends.</summary>
    [ThreadStatic]
    private static TurboJpegHandle? JpegCompressor;

    /// <summary>Encodes as PNG (lossless) at zlib <paramref name="compression"/> 0-9.</summary>
    public static byte[] EncodePng(Raster image, int compression = 6)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfNegative(compression);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(compression, 9);
        using VipsImageHandle vips = FromRaster(image);
        int result = VipsNative.PngSaveBuffer(vips, out IntPtr buffer, out nuint length, "compression", compression, IntPtr.Zero);
        return TakeBuffer(result, buffer, length, "PNG");
    }

    /// <summary>
    /// Resizes to <paramref name="width"/> x <paramref name="height"/>. Shrinking uses libvips' reduce (an
    /// area-correct convolution with <paramref name="kernel"/>); enlarging uses resize with the same kernel.
    /// </summary>
    public static Raster Resize(Raster image, int width, int height, ResizeKernel kernel = ResizeKernel.Lanczos3)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if (width == image.Width && height == image.Height)
        {
            return image;
        }

        using VipsImageHandle vips = FromRaster(image);
        double hshrink = (double)image.Width / width;
        double vshrink = (double)image.Height / height;
        IntPtr output;
        int result = hshrink >= 1 && vshrink >= 1
            ? VipsNative.Reduce(vips, out output, hshrink, vshrink, "kernel", (int)kernel, IntPtr.Zero)
            : Math.Abs(hshrink - vshrink) < 1e-9
                ? VipsNative.Resize(vips, out output, 1 / hshrink, "kernel", (int)kernel, IntPtr.Zero)
                : throw new ArgumentException("Enlarging is supported with the same factor on both axes only.", nameof(width));
        using VipsImageHandle resized = Take(result, output, "resize");
        Raster raster = ToRaster(resized);
        // Rounding inside libvips can leave one pixel more or less than asked: report rather than crop silently.
        return raster.Width == width && raster.Height == height
            ? raster
            : throw new ImageCodecException($"libvips produced {raster.Width}x{raster.Height} instead of {width}x{height}.");
    }

    /// <summary>
    /// Renders <paramref name="text"/> (plain text; markup characters are escaped) with Pango through libvips as a grey
    /// coverage mask: 255 where the glyphs are solid. <paramref name="font"/> is a Pango font description ("sans 10").
    /// </summary>
    public static Raster RenderText(string text, string font = "sans 10", int dpi = 96)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        ArgumentException.ThrowIfNullOrEmpty(font);
        EnsureInitialized();
        string escaped = System.Security.SecurityElement.Escape(text);
        int result = VipsNative.Text(out IntPtr output, escaped, "font", font, "dpi", dpi, IntPtr.Zero);
        using VipsImageHandle mask = Take(result, output, "render text");
        return ToRaster(mask);
    }

    internal static void EnsureInitialized() => _ = Initialized.Value;

    internal static unsafe VipsImageHandle FromRaster(Raster image)
    {
        EnsureInitialized();
        fixed (byte* data = image.Pixels)
        {
            IntPtr raw = VipsNative.ImageNewFromMemoryCopy(data, (nuint)image.Pixels.Length, image.Width, image.Height, image.Bands, VipsNative.FormatUChar);
            return Take(raw == IntPtr.Zero ? -1 : 0, raw, "wrap pixels");
        }
    }

    internal static Raster ToRaster(VipsImageHandle image)
    {
        int width = VipsNative.ImageGetWidth(image);
        int height = VipsNative.ImageGetHeight(image);
        int bands = VipsNative.ImageGetBands(image);
        if (bands is < 1 or > 4)
        {
            throw new ImageCodecException($"Images with {bands} bands are not supported (1 to 4).");
        }

        IntPtr memory = VipsNative.ImageWriteToMemory(image, out nuint size);
        if (memory == IntPtr.Zero)
        {
            throw new ImageCodecException($"Cannot decode the image: {TakeError()}");
        }

        try
        {
            var pixels = new byte[(int)size];
            Marshal.Copy(memory, pixels, 0, pixels.Length);
            return new Raster(width, height, bands, pixels);
        }
        finally
        {
            VipsNative.Free(memory);
        }
    }

    /// <summary>Any decoded image as 8-bit sRGB, or 8-bit grey when it is grey (16-bit, CMYK, LAB and so on converted).</summary>
    private static VipsImageHandle ToEightBit(VipsImageHandle image)
    {
        int interpretation = VipsNative.ImageGetInterpretation(image);
        int bands = VipsNative.ImageGetBands(image);
        bool grey = bands <= 2 && interpretation is VipsNative.InterpretationGrey or 26; // B_W or GREY16
        int result = VipsNative.Colourspace(image, out IntPtr colour, grey ? VipsNative.InterpretationGrey : VipsNative.InterpretationSrgb, IntPtr.Zero);
        using VipsImageHandle converted = Take(result, colour, "convert colour");
        result = VipsNative.Cast(converted, out IntPtr cast, VipsNative.FormatUChar, IntPtr.Zero);
        return Take(result, cast, "convert to 8 bits");
    }

    private static Raster DropAlpha(Raster image)
    {
        int colourBands = image.Bands - 1;
        var pixels = new byte[image.Width * image.Height * colourBands];
        for (int source = 0, target = 0; source < image.Pixels.Length; source += image.Bands, target += colourBands)
        {
            image.Pixels.AsSpan(source, colourBands).CopyTo(pixels.AsSpan(target));
        }

        return new Raster(image.Width, image.Height, colourBands, pixels);
    }

    internal static VipsImageHandle Take(int result, IntPtr output, string what)
    {
        if (result != 0 || output == IntPtr.Zero)
        {
            if (output != IntPtr.Zero)
            {
                VipsNative.ObjectUnref(output);
            }

            throw new ImageCodecException($"Cannot {what}: {TakeError()}");
        }

        return new VipsImageHandle(output);
    }

    private static byte[] TakeBuffer(int result, IntPtr buffer, nuint length, string format)
    {
        try
        {
            if (result != 0 || buffer == IntPtr.Zero)
            {
                throw new ImageCodecException($"Cannot encode {format}: {TakeError()}");
            }

            var bytes = new byte[(int)length];
            Marshal.Copy(buffer, bytes, 0, bytes.Length);
            return bytes;
        }
        finally
        {
            if (buffer != IntPtr.Zero)
            {
                VipsNative.Free(buffer);
            }
        }
    }

    /// <summary>libvips' accumulated error text, cleared for the next call.</summary>
    internal static string TakeError()
    {
        string message = (Marshal.PtrToStringUTF8(VipsNative.ErrorBuffer()) ?? string.Empty).Trim();
        VipsNative.ErrorClear();
        return message.Length == 0 ? "unknown libvips error" : message.Replace('\n', ' ');
    }
}
