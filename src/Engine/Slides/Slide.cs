using System.Runtime.InteropServices;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Interop;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Slides;

/// <summary>
/// A whole-slide image opened through OpenSlide, shaped like openslide-python's <c>OpenSlide</c>.
/// </summary>
/// <remarks>
/// Errors latch: once OpenSlide reports an error on a handle, every later call on that handle fails
/// with the same error (this is OpenSlide's contract). This class checks for an error after every
/// native call and, once one is seen, throws <see cref="SlideException"/> with
/// <see cref="SlideErrorKind.ReadFailed"/> from every member: reopen the file to try again.
/// Reads from several threads at once are safe (OpenSlide serialises what it must internally).
/// Regions wholly inside a level of a TIFF-family slide are decoded by libvips from the level's TIFF page
/// (<see cref="TiffLevelReader"/>): the same bytes, without OpenSlide 3.4's per-pixel compositing.
/// </remarks>
public sealed class Slide : IDisposable
{
    private readonly OpenSlideHandle _handle;
    private readonly (long Width, long Height)[] _levelDimensions;
    private readonly double[] _levelDownsamples;
    private readonly Lazy<TiffLevelReader?> _tiffLevels;
    private HeldLevel? _held;
    private readonly Lock _overviewGate = new();
    private readonly Lazy<double?> _overviewDownsample; // asked for by every Deep Zoom request and thumbnail
    private SlideOverview? _overview;

    private Slide(string path, OpenSlideHandle handle)
    {
        Path = path;
        _handle = handle;
        int levelCount = OpenSlideNative.GetLevelCount(handle);
        ThrowIfError();
        var dimensions = new (long Width, long Height)[levelCount];
        var downsamples = new double[levelCount];
        for (int level = 0; level < levelCount; level++)
        {
            OpenSlideNative.GetLevelDimensions(handle, level, out long w, out long h);
            downsamples[level] = OpenSlideNative.GetLevelDownsample(handle, level);
            dimensions[level] = (w, h);
        }

        ThrowIfError();
        _levelDimensions = dimensions;
        _levelDownsamples = downsamples;

        var properties = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string name in OpenSlideNative.ReadStringArray(OpenSlideNative.GetPropertyNames(handle)))
        {
            properties[name] = Marshal.PtrToStringUTF8(OpenSlideNative.GetPropertyValue(handle, name)) ?? string.Empty;
        }

        var associated = new Dictionary<string, (long Width, long Height)>(StringComparer.Ordinal);
        foreach (string name in OpenSlideNative.ReadStringArray(OpenSlideNative.GetAssociatedImageNames(handle)))
        {
            OpenSlideNative.GetAssociatedImageDimensions(handle, name, out long w, out long h);
            associated[name] = (w, h);
        }

        ThrowIfError();
        Properties = properties;
        AssociatedImageDimensions = associated;
        _tiffLevels = new Lazy<TiffLevelReader?>(OpenTiffLevels);
        _overviewDownsample = new Lazy<double?>(ChooseOverviewDownsample);
    }

    /// <summary>The file this slide was opened from.</summary>
    public string Path { get; }

    /// <summary>Number of pyramid levels (level 0 is full resolution).</summary>
    public int LevelCount => _levelDimensions.Length;

    /// <summary>Width and height of each level, in that level's pixels.</summary>
    public IReadOnlyList<(long Width, long Height)> LevelDimensions => _levelDimensions;

    /// <summary>Width and height of level 0.</summary>
    public (long Width, long Height) Dimensions => _levelDimensions[0];

    /// <summary>Downsample factor of each level relative to level 0.</summary>
    public IReadOnlyList<double> LevelDownsamples => _levelDownsamples;

    /// <summary>All properties OpenSlide reports, e.g. <c>openslide.mpp-x</c>.</summary>
    public IReadOnlyDictionary<string, string> Properties { get; }

    /// <summary>The slide's resolution: <paramref name="mppOverride"/> when given (range-checked), else from its metadata.</summary>
    /// <exception cref="SlideException"><see cref="SlideErrorKind.InvalidRequest"/> for an override out of range.</exception>
    public SlideResolution Resolution(double? mppOverride = null) => SlideResolution.Resolve(Properties, mppOverride);

    /// <summary>µm per pixel along x, from the override or the metadata: what every tiling, analysis and segmentation needs.</summary>
    /// <exception cref="SlideException"><see cref="SlideErrorKind.InvalidRequest"/> naming the file and how to give the resolution when it is unknown.</exception>
    public double RequireMpp(double? mppOverride, out SlideResolution resolution)
    {
        resolution = Resolution(mppOverride);
        return resolution.RequireMppX(System.IO.Path.GetFileName(Path));
    }

    /// <inheritdoc cref="RequireMpp(double?, out SlideResolution)"/>
    public double RequireMpp(double? mppOverride = null) => RequireMpp(mppOverride, out _);

    /// <summary>Names and sizes of associated images (label, macro, thumbnail, ...).</summary>
    public IReadOnlyDictionary<string, (long Width, long Height)> AssociatedImageDimensions { get; }

    /// <summary>The vendor OpenSlide detected (<c>openslide.vendor</c>), e.g. <c>aperio</c>.</summary>
    public string? Vendor => Properties.GetValueOrDefault("openslide.vendor");

    /// <summary>The colour behind the scanned area (<c>openslide.background-color</c>, white when absent).</summary>
    public (byte R, byte G, byte B) BackgroundColor =>
        Properties.GetValueOrDefault("openslide.background-color") is { Length: 6 } hex
            && int.TryParse(hex, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out int rgb)
            ? ((byte)(rgb >> 16), (byte)(rgb >> 8), (byte)rgb)
            : ((byte)255, (byte)255, (byte)255);

    /// <summary>The version of the OpenSlide library in use.</summary>
    public static string LibraryVersion => Marshal.PtrToStringUTF8(OpenSlideNative.GetVersion()) ?? "unknown";

    /// <summary>The vendor of <paramref name="path"/>, or null when OpenSlide does not recognise it.</summary>
    public static string? DetectFormat(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return Marshal.PtrToStringUTF8(OpenSlideNative.DetectVendor(path));
    }

    /// <summary>Opens a slide.</summary>
    /// <exception cref="SlideException">
    /// <see cref="SlideErrorKind.NotFound"/> when the file is missing; <see cref="SlideErrorKind.Unsupported"/>
    /// with OpenSlide's reason when it cannot be opened, and what the file is and how to convert it when its first
    /// bytes tell (a TIFF in strips, DICOM, a plain PNG or JPEG).
    /// </exception>
    public static Slide Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new SlideException(SlideErrorKind.NotFound, $"Slide file not found: '{path}'.");
        }

        IntPtr raw = OpenSlideNative.Open(path);
        if (raw == IntPtr.Zero)
        {
            throw Unopenable(path, "Unsupported or missing image file.");
        }

        var handle = new OpenSlideHandle(raw);
        string? error = Marshal.PtrToStringUTF8(OpenSlideNative.GetError(handle));
        if (error is not null)
        {
            handle.Dispose();
            throw Unopenable(path, error);
        }

        try
        {
            return new Slide(path, handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static SlideException Unopenable(string path, string reason) =>
        new(SlideErrorKind.Unsupported, $"OpenSlide cannot open '{path}': {reason}" + (UnopenableFile.Hint(path) is { } hint ? " " + hint : ""));

    /// <summary>The level whose downsample is the largest not above <paramref name="downsample"/>.</summary>
    public int GetBestLevelForDownsample(double downsample)
    {
        int level = OpenSlideNative.GetBestLevelForDownsample(_handle, downsample);
        ThrowIfError();
        return level;
    }

    /// <summary>
    /// File name extensions of whole-slide images, lower case: the formats OpenSlide reads, and DICOM and CZI, which this
    /// build cannot open but whose refusal says what to do. What a listing of slide folders looks for, by name only.
    /// </summary>
    public static IReadOnlySet<string> FileExtensions { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        ".svs", ".tif", ".tiff", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif", ".dcm", ".czi",
    };

    /// <summary>Largest region <see cref="ReadRegion"/> reads in one call (2^28 pixels = 1 GiB of RGBA); read tiles beyond that.</summary>
    public const long MaxRegionPixels = 1L << 28;

    /// <summary>
    /// Reads a region as straight RGBA, like openslide-python's <c>read_region(location, level, size)</c>:
    /// (<paramref name="x"/>, <paramref name="y"/>) is the top-left in level-0 pixels, the size is in
    /// <paramref name="level"/>'s pixels. Parts outside the slide are transparent (0,0,0,0).
    /// </summary>
    /// <exception cref="SlideException">
    /// <see cref="SlideErrorKind.OutOfRange"/> for a level that does not exist; <see cref="SlideErrorKind.InvalidRequest"/> for a negative size or one past
    /// <see cref="MaxRegionPixels"/> (checked before anything is allocated); <see cref="SlideErrorKind.ReadFailed"/>
    /// when OpenSlide fails, after which the slide is unusable (the error latches).
    /// </exception>
    public Raster ReadRegion(long x, long y, int level, int width, int height)
    {
        ValidateRegion(level, width, height);
        if (TryCutFromHeld(x, y, level, width, height) is { } held)
        {
            return held.Bands == 3 ? PixelConversion.RgbToOpaqueRgba(held) : held;
        }

        return _tiffLevels.Value?.TryReadRgb(this, x, y, level, width, height) is { } rgb
            ? PixelConversion.RgbToOpaqueRgba(rgb)
            : ReadArgb(x, y, level, width, height, static (argb, w, h, _) => PixelConversion.ToRaster(argb, w, h), default);
    }

    /// <summary>
    /// Reads a region like <see cref="ReadRegion"/>, composited on the slide's <see cref="BackgroundColor"/> as RGB
    /// (what tiles, thumbnails and Deep Zoom show): the same bytes as <c>ReadRegion(...).Flatten(BackgroundColor)</c>
    /// in one pass.
    /// </summary>
    /// <exception cref="SlideException">As <see cref="ReadRegion"/>.</exception>
    public Raster ReadRegionRgb(long x, long y, int level, int width, int height)
    {
        ValidateRegion(level, width, height);
        if (TryCutFromHeld(x, y, level, width, height) is { } held)
        {
            return held.Bands == 3 ? held : held.Flatten(BackgroundColor);
        }

        return _tiffLevels.Value?.TryReadRgb(this, x, y, level, width, height)
            ?? ReadArgb(x, y, level, width, height, static (argb, w, h, background) => PixelConversion.ToRgbRaster(argb, w, h, background), BackgroundColor);
    }

    private delegate Raster ArgbConverter(ReadOnlySpan<uint> argb, int width, int height, (byte R, byte G, byte B) background);

    /// <summary>One native read into a pooled buffer (regions are read often; a fresh 256 KiB array each time would churn the large object heap).</summary>
    private unsafe Raster ReadArgb(long x, long y, int level, int width, int height, ArgbConverter convert, (byte R, byte G, byte B) background)
    {
        int pixels = width * height;
        uint[] argb = System.Buffers.ArrayPool<uint>.Shared.Rent(pixels);
        try
        {
            fixed (uint* destination = argb)
            {
                ReadBands(destination, x, y, level, width, height);
            }

            ThrowIfError();
            return convert(argb.AsSpan(0, pixels), width, height, background);
        }
        finally
        {
            System.Buffers.ArrayPool<uint>.Shared.Return(argb);
        }
    }

    /// <summary>
    /// Large reads (a whole level for tissue detection or a thumbnail) go in horizontal bands on the engine's threads:
    /// OpenSlide is thread-safe and decodes one tile at a time, so one call uses one core.
    /// </summary>
    private unsafe void ReadBands(uint* destination, long x, long y, int level, int width, int height)
    {
        // A band's top must be a whole level-0 row: at a fractional downsample (SVS levels are 4.0002x) OpenSlide
        // would resample the band at a sub-pixel offset, and the bands would not be the pixels of one read.
        double downsample = LevelDownsamples[level];
        int bands = Math.Min(EngineThreads.Count, height / BandRows);
        if (bands < 2 || downsample != Math.Floor(downsample))
        {
            OpenSlideNative.ReadRegion(_handle, destination, x, y, level, width, height);
            return;
        }

        nint start = (nint)destination;
        Parallel.For(0, bands, EngineThreads.ParallelOptions, band =>
        {
            int first = (int)((long)height * band / bands), last = (int)((long)height * (band + 1) / bands);
            long bandY = y + (long)Math.Round(first * downsample);
            OpenSlideNative.ReadRegion(_handle, (uint*)start + ((long)first * width), x, bandY, level, width, last - first);
        });
    }

    /// <summary>Rows below which a band is not worth a thread.</summary>
    private const int BandRows = 512;

    /// <summary>
    /// Reads <paramref name="level"/> whole and, until the returned handle is disposed, cuts later reads that lie inside it
    /// from memory. For a small slide whose tissue view and tiles come from the same level, that level is then decoded
    /// once instead of twice. The pixels are those of a direct read: only regions on whole pixels of the level are cut
    /// (level 0, or an integer downsample with the origin on its multiples), where OpenSlide copies without resampling;
    /// other reads, and reads that cross the level's edge, still go to OpenSlide. One level is held at a time.
    /// </summary>
    /// <exception cref="SlideException">As <see cref="ReadRegion"/>, for the whole level.</exception>
    public IDisposable HoldLevel(int level)
    {
        ValidateRegion(level, 0, 0);
        (long levelWidth, long levelHeight) = _levelDimensions[level];
        int width = checked((int)levelWidth), height = checked((int)levelHeight);
        ValidateRegion(level, width, height);
        // Kept as the read gives it: RGB where the level is decoded directly (opaque), straight RGBA otherwise.
        Raster pixels = _tiffLevels.Value?.TryReadRgb(this, 0, 0, level, width, height)
            ?? ReadArgb(0, 0, level, width, height, static (argb, w, h, _) => PixelConversion.ToRaster(argb, w, h), default);
        var held = new HeldLevel(this, level, pixels);
        Volatile.Write(ref _held, held);
        return held;
    }

    /// <summary>
    /// The region cut from the held level (RGB when the level is held opaque, else straight RGBA), or null when no held
    /// level covers it on whole pixels.
    /// </summary>
    internal Raster? TryCutFromHeld(long x, long y, int level, int width, int height)
    {
        Raster? pixels = HeldPixels(level);
        double downsample = _levelDownsamples[level];
        if (pixels is null || width == 0 || height == 0 || downsample != Math.Floor(downsample)
            || x < 0 || y < 0 || x % (long)downsample != 0 || y % (long)downsample != 0)
        {
            return null;
        }

        long left = x / (long)downsample, top = y / (long)downsample;
        return left + width <= pixels.Width && top + height <= pixels.Height
            ? pixels.Crop((int)left, (int)top, width, height)
            : null;
    }

    /// <summary>The whole of <paramref name="level"/> while it is held (shared: read it, never write it), else null.</summary>
    private Raster? HeldPixels(int level) => Volatile.Read(ref _held) is { } held && held.Level == level ? held.Pixels : null;

    /// <summary>A level kept in memory by <see cref="HoldLevel"/>; disposing it lets reads go to OpenSlide again.</summary>
    private sealed class HeldLevel(Slide slide, int level, Raster pixels) : IDisposable
    {
        public int Level { get; } = level;

        /// <summary>The whole level: opaque RGB, or straight RGBA as <see cref="ReadRegion"/> gives it.</summary>
        public Raster Pixels { get; } = pixels;

        public void Dispose() => Interlocked.CompareExchange(ref slide._held, null, this);
    }

    /// <summary>For each level, whether in-level reads bypass OpenSlide's compositing (see <see cref="TiffLevelReader"/>).</summary>
    internal IReadOnlyList<bool> DirectReadLevels => _tiffLevels.Value?.Levels ?? new bool[LevelCount];

    /// <summary>For each level, whether its direct reads decode the JPEG tiles with TurboJPEG (see <see cref="TiffJpegTiles"/>).</summary>
    internal IReadOnlyList<bool> JpegTileLevels => _tiffLevels.Value?.JpegTileLevels ?? new bool[LevelCount];

    /// <summary>Why levels of this TIFF-family slide are read through OpenSlide rather than directly, or null.</summary>
    internal string? DirectReadFallback { get; private set; }

    private TiffLevelReader? OpenTiffLevels()
    {
        TiffLevelReader? reader = TiffLevelReader.TryOpen(this, out string? fallback, out bool pixelsDiffered);
        DirectReadFallback = fallback;
        string name = System.IO.Path.GetFileName(Path);
        if (pixelsDiffered)
        {
            SlideLog.DirectReadsDisagree(EngineLog.For("SlidePlugin.Slides"), name, fallback!);
        }
        else if (fallback is not null)
        {
            SlideLog.DirectReadsOff(EngineLog.For("SlidePlugin.Slides"), name, reader is null ? "every level" : "some levels", fallback);
        }

        return reader;
    }

    /// <summary>A region composited on the background as RGB, read by OpenSlide alone (the direct path's check).</summary>
    internal Raster ReadRgbThroughOpenSlide(long x, long y, int level, int width, int height)
    {
        ValidateRegion(level, width, height);
        return ReadArgb(x, y, level, width, height, static (argb, w, h, background) => PixelConversion.ToRgbRaster(argb, w, h, background), BackgroundColor);
    }

    /// <summary>Reads an associated image (label, macro, thumbnail, ...) as straight RGBA.</summary>
    /// <exception cref="SlideException"><see cref="SlideErrorKind.InvalidRequest"/> for an unknown name; ReadFailed when OpenSlide fails.</exception>
    public unsafe Raster ReadAssociatedImage(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!AssociatedImageDimensions.TryGetValue(name, out (long Width, long Height) size))
        {
            throw new SlideException(SlideErrorKind.InvalidRequest,
                $"'{System.IO.Path.GetFileName(Path)}' has no associated image '{name}'; it has: {string.Join(", ", AssociatedImageDimensions.Keys)}.");
        }

        ThrowIfError();
        if (size.Width * size.Height > MaxRegionPixels)
        {
            throw new SlideException(SlideErrorKind.InvalidRequest, $"Associated image '{name}' is {size.Width}x{size.Height}: too large to read at once.");
        }

        var argb = new uint[size.Width * size.Height];
        fixed (uint* destination = argb)
        {
            OpenSlideNative.ReadAssociatedImage(_handle, name, destination);
        }

        ThrowIfError();
        return PixelConversion.ToRaster(argb, (int)size.Width, (int)size.Height);
    }

    /// <summary>
    /// The level-0 rectangle (<paramref name="x"/>, <paramref name="y"/>, <paramref name="width"/>, <paramref name="height"/>)
    /// as <paramref name="outWidth"/> x <paramref name="outHeight"/> RGB on the background colour: <see cref="LevelExtent"/>
    /// pixels of <paramref name="level"/> read with <see cref="ReadRegionRgb"/>, resized only when that is not the output size.
    /// Tiles, training bags, segmentation regions and mask regions are all read this way, so one rectangle gives one set of pixels.
    /// </summary>
    /// <exception cref="SlideException">As <see cref="ReadRegionRgb"/>.</exception>
    public Raster ReadRegionScaled(long x, long y, long width, long height, int level, int outWidth, int outHeight)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(outWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outHeight, 1);
        Raster read = ReadRegionRgb(x, y, level, LevelExtent(width, level), LevelExtent(height, level));
        return Scaled(read, outWidth, outHeight);
    }

    /// <summary>How many pixels of <paramref name="level"/> cover <paramref name="extent"/> level-0 pixels (rounded, at least 1).</summary>
    public int LevelExtent(long extent, int level)
    {
        ValidateRegion(level, 0, 0);
        return (int)Math.Clamp(Math.Round(extent / _levelDownsamples[level]), 1, int.MaxValue);
    }

    /// <summary><paramref name="read"/> at <paramref name="outWidth"/> x <paramref name="outHeight"/>: itself when it has that size, else resized.</summary>
    public static Raster Scaled(Raster read, int outWidth, int outHeight)
    {
        ArgumentNullException.ThrowIfNull(read);
        return read.Width == outWidth && read.Height == outHeight ? read : ImageCodec.Resize(read, outWidth, outHeight);
    }

    /// <summary>
    /// The whole slide as RGBA with about <paramref name="downsample"/> level-0 pixels a pixel: the best level
    /// read whole, then reduced (never enlarged) to round(dimensions / downsample) with <paramref name="kernel"/>.
    /// </summary>
    /// <exception cref="SlideException">InvalidRequest when even the chosen level is past <see cref="MaxRegionPixels"/>.</exception>
    public Raster ReadDownsampled(double downsample, ResizeKernel kernel = ResizeKernel.Lanczos3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(downsample, 1.0);
        int level = GetBestLevelForDownsample(downsample);
        (long levelWidth, long levelHeight) = LevelDimensions[level];
        if (levelWidth * levelHeight > MaxRegionPixels)
        {
            throw new SlideException(SlideErrorKind.InvalidRequest,
                $"'{System.IO.Path.GetFileName(Path)}' has no pyramid level small enough to read whole at downsample {downsample:0.##} (the best is {levelWidth}x{levelHeight}).");
        }

        int width = (int)Math.Max(1, Math.Round(Dimensions.Width / downsample));
        int height = (int)Math.Max(1, Math.Round(Dimensions.Height / downsample));
        // A held level is shrunk in place (no copy of it first), and is shared: it is never handed out itself. A level read
        // directly is shrunk as the RGB it is read as, a quarter less work than its opaque RGBA and the same bytes.
        ValidateRegion(level, (int)levelWidth, (int)levelHeight); // a latched error stops the direct read too
        Raster? held = HeldPixels(level);
        Raster view = held
            ?? _tiffLevels.Value?.TryReadRgb(this, 0, 0, level, (int)levelWidth, (int)levelHeight)
            ?? ReadRegion(0, 0, level, (int)levelWidth, (int)levelHeight);
        Raster result = width < view.Width && height < view.Height ? ImageCodec.Resize(view, width, height, kernel) : view;
        // An opaque level held or read as RGB becomes RGBA after the shrink: the bytes of shrinking its opaque RGBA (libvips
        // resamples each band on its own), in a new array.
        return result.Bands == 3 ? PixelConversion.RgbToOpaqueRgba(result)
            : ReferenceEquals(result, held) ? held.Crop(0, 0, held.Width, held.Height)
            : result;
    }

    /// <summary>
    /// An RGB thumbnail that fits in <paramref name="maxSize"/> x <paramref name="maxSize"/>, composited on the
    /// background colour, like openslide-python's <c>get_thumbnail</c>. One no larger than the <see cref="GetOverview"/>
    /// is cut from it (which it makes, so a slide list's thumbnails leave the slide ready for its first Deep Zoom tiles).
    /// </summary>
    public Raster GetThumbnail(int maxSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSize, 1);
        double downsample = Math.Max(1.0, Math.Max((double)Dimensions.Width / maxSize, (double)Dimensions.Height / maxSize));
        if (OverviewDownsample is { } overviewDownsample && downsample >= overviewDownsample && GetOverview() is { } overview)
        {
            int width = (int)Math.Max(1, Math.Round(Dimensions.Width / downsample));
            int height = (int)Math.Max(1, Math.Round(Dimensions.Height / downsample));
            return overview.Read(0, 0, Dimensions.Width, Dimensions.Height, width, height);
        }

        return ReadDownsampled(downsample).Flatten(BackgroundColor);
    }

    /// <summary>
    /// Level-0 pixels a pixel of this slide's <see cref="SlideOverview"/>: the smallest power of two that brings the slide
    /// within <see cref="SlideOverview.MaxEdge"/> a side; null when the level it would be made from is past
    /// <see cref="SlideOverview.MaxSourcePixels"/> (a huge slide without a pyramid), where reads go to the slide.
    /// </summary>
    public double? OverviewDownsample => _overviewDownsample.Value;

    private double? ChooseOverviewDownsample()
    {
        double downsample = 1;
        while (Math.Max(Dimensions.Width, Dimensions.Height) / downsample > SlideOverview.MaxEdge)
        {
            downsample *= 2;
        }

        (long width, long height) = _levelDimensions[GetBestLevelForDownsample(downsample)];
        return width * height <= SlideOverview.MaxSourcePixels ? downsample : null;
    }

    /// <summary>
    /// The slide's overview, read whole from its best level (Lanczos-3, on the background colour) on first use and kept
    /// while the slide is open; null where <see cref="OverviewDownsample"/> is. Callers racing the first use wait for the one read.
    /// </summary>
    /// <exception cref="SlideException">As <see cref="ReadDownsampled"/>; nothing is kept, so a later call reads again.</exception>
    public SlideOverview? GetOverview()
    {
        if (OverviewDownsample is not { } downsample)
        {
            return null;
        }

        lock (_overviewGate)
        {
            return _overview ??= SlideOverview.Make(this, downsample);
        }
    }

    private void ValidateRegion(int level, int width, int height)
    {
        ThrowIfError();
        if (level < 0 || level >= LevelCount)
        {
            throw new SlideException(SlideErrorKind.OutOfRange, $"Level {level} does not exist: '{System.IO.Path.GetFileName(Path)}' has levels 0..{LevelCount - 1}.");
        }

        if (width < 0 || height < 0)
        {
            throw new SlideException(SlideErrorKind.InvalidRequest, $"Region size {width}x{height} is negative.");
        }

        if ((long)width * height > MaxRegionPixels)
        {
            throw new SlideException(SlideErrorKind.InvalidRequest,
                $"Region {width}x{height} is larger than {MaxRegionPixels} pixels; read it in tiles.");
        }
    }

    /// <summary>Throws when OpenSlide has latched an error on this handle.</summary>
    private void ThrowIfError()
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        string? error = Marshal.PtrToStringUTF8(OpenSlideNative.GetError(_handle));
        if (error is not null)
        {
            throw new SlideException(SlideErrorKind.ReadFailed,
                $"OpenSlide error on '{Path}': {error} (the error has latched; reopen the slide to read it again).");
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_tiffLevels.IsValueCreated)
        {
            _tiffLevels.Value?.Dispose();
        }

        _handle.Dispose();
    }
}
