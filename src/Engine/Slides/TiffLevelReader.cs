using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Interop;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Slides;

/// <summary>
/// A faster road to the pixels of TIFF-family slides (generic tiled TIFF, Aperio SVS): each pyramid level
/// that is an 8-bit RGB TIFF page libvips can decode is read through libvips, which decodes the stored tiles
/// with the same libjpeg-turbo, without OpenSlide 3.4's per-pixel cairo compositing (about 25 ns a pixel,
/// most of a tile's cost). Used only where the result is the same as OpenSlide's: a region wholly inside
/// the level, at whole-pixel level coordinates, on a page whose compression libvips is known to decode as
/// OpenSlide does (<see cref="DirectCompressions"/>), and only after one region of every such level, read both
/// ways when the slide is opened, came back byte for byte the same. Anything else, or any failure, goes through
/// OpenSlide, so OpenSlide stays the authority on pixels and errors (tests compare both against openslide-python).
/// </summary>
internal sealed class TiffLevelReader : IDisposable
{
    private static readonly HashSet<string> TiffVendors = new(StringComparer.Ordinal) { "generic-tiff", "aperio" };

    /// <summary>
    /// Compressions whose pages libvips decodes to OpenSlide's bytes: none (1), LZW (5), JPEG (7, YCbCr or RGB) and
    /// Deflate (8, 32946). Not Aperio's JPEG 2000 (33003, 33005): libvips 8.14 converts both from YCbCr, so RGB tiles
    /// (33005) come back with white as (255, 121, 255), and its YCbCr rounding differs from OpenSlide's by one.
    /// </summary>
    internal static readonly IReadOnlySet<int> DirectCompressions = new HashSet<int> { 1, 5, 7, 8, 32946 };

    /// <summary>Side of the region of each level read both ways when a slide is opened.</summary>
    private const int CheckSize = 256;

    private readonly VipsImageHandle?[] _levels;
    private readonly TiffJpegTiles?[] _jpegTiles; // JPEG levels decoded by TurboJPEG, ahead of libvips, once checked

    private TiffLevelReader(VipsImageHandle?[] levels, TiffJpegTiles?[] jpegTiles) => (_levels, _jpegTiles) = (levels, jpegTiles);

    /// <summary>Which levels this reader serves.</summary>
    public IReadOnlyList<bool> Levels => _levels.Select(l => l is not null).ToArray();

    /// <summary>For each level, whether its JPEG tiles are decoded by TurboJPEG (<see cref="TiffJpegTiles"/>).</summary>
    public IReadOnlyList<bool> JpegTileLevels => _jpegTiles.Select((t, level) => t is not null && _levels[level] is not null).ToArray();

    /// <summary>
    /// The reader for <paramref name="slide"/>, or null when no level qualifies. <paramref name="fallback"/> says why
    /// a level of a TIFF-family slide is read through OpenSlide instead (null when every level is served, or the
    /// slide is no TIFF); <paramref name="pixelsDiffered"/> whether that is because the open-time check found other pixels.
    /// </summary>
    public static TiffLevelReader? TryOpen(Slide slide, out string? fallback, out bool pixelsDiffered) =>
        TryOpen(slide, DirectCompressions, out fallback, out pixelsDiffered);

    /// <summary>As above, with the compressions to try given (tests show the open-time check catches what a list lets through).</summary>
    internal static TiffLevelReader? TryOpen(Slide slide, IReadOnlySet<int> compressions, out string? fallback, out bool pixelsDiffered)
    {
        fallback = null;
        pixelsDiffered = false;
        if (slide.Vendor is not { } vendor || !TiffVendors.Contains(vendor))
        {
            return null;
        }

        IReadOnlyList<TiffDirectory> directories;
        try
        {
            directories = TiffDirectories.Read(slide.Path);
        }
        catch (IOException error)
        {
            fallback = $"its TIFF directories could not be read ({error.Message})";
            return null;
        }

        ImageCodec.EnsureInitialized();
        var levels = new VipsImageHandle?[slide.LevelCount];
        var jpegTiles = new TiffJpegTiles?[slide.LevelCount];
        var refused = new List<string>();
        // TIFF directories: every level, plus thumbnail, label and macro for SVS; match levels by size.
        for (int page = 0; page < directories.Count && levels.Any(l => l is null); page++)
        {
            TiffDirectory directory = directories[page];
            int level = Enumerable.Range(0, slide.LevelCount).FirstOrDefault(l => levels[l] is null && directory.Tiled
                && slide.LevelDimensions[l] == (directory.Width, directory.Height), -1);
            if (level < 0)
            {
                continue;
            }

            if (directory.Compression != 7 && (directory.Width < directory.TileWidth || directory.Height < directory.TileHeight))
            {
                // Smaller than one tile and not JPEG: OpenSlide 3.4.1 reads such levels through libtiff's RGBA interface,
                // which with libtiff 4.5 leaves rows unwritten (other pixels on each read); nothing can be proven equal.
                continue;
            }

            if (!compressions.Contains(directory.Compression))
            {
                refused.Add($"level {level} has compression {TiffDirectory.CompressionName(directory.Compression)}");
                continue;
            }

            if (directory.SamplesPerPixel != 3 || directory.BitsPerSample != 8)
            {
                refused.Add($"level {level} has {directory.SamplesPerPixel} samples of {directory.BitsPerSample} bits");
                continue;
            }

            if (VipsNative.TiffLoad(slide.Path, out IntPtr raw, "page", page, "access", VipsNative.AccessRandom, "fail", 1, IntPtr.Zero) != 0 || raw == IntPtr.Zero)
            {
                refused.Add($"level {level}: libvips cannot open page {page} ({ImageCodec.TakeError()})");
                continue;
            }

            var image = new VipsImageHandle(raw);
            if (VipsNative.ImageGetBands(image) == 3 && VipsNative.ImageGetFormat(image) == VipsNative.FormatUChar
                && (VipsNative.ImageGetWidth(image), VipsNative.ImageGetHeight(image)) == (directory.Width, directory.Height))
            {
                levels[level] = image;
                jpegTiles[level] = TiffJpegTiles.TryOpen(slide.Path, directory);
            }
            else
            {
                refused.Add($"level {level}: libvips decodes page {page} to another layout");
                image.Dispose();
            }
        }

        var reader = new TiffLevelReader(levels, jpegTiles);
        if (levels.All(l => l is null))
        {
            fallback = refused.Count > 0 ? string.Join("; ", refused) : null;
            reader.Dispose();
            return null;
        }

        if (reader.FirstMismatch(slide) is { } mismatch)
        {
            fallback = mismatch;
            pixelsDiffered = true;
            reader.Dispose();
            return null;
        }

        if (levels.All(l => l is null))
        {
            return null;
        }

        fallback = refused.Count > 0 ? string.Join("; ", refused) : null;
        return reader;
    }

    /// <summary>
    /// Reads a region of each served level (its centre, up to <see cref="CheckSize"/> square) through libvips and
    /// through OpenSlide; the first level where the two differ, described, or null when all agree byte for byte.
    /// </summary>
    private string? FirstMismatch(Slide slide)
    {
        for (int level = 0; level < _levels.Length; level++)
        {
            if (_levels[level] is null)
            {
                continue;
            }

            (long levelWidth, long levelHeight) = slide.LevelDimensions[level];
            int width = (int)Math.Min(CheckSize, levelWidth), height = (int)Math.Min(CheckSize, levelHeight);
            long levelX = (levelWidth - width) / 2, levelY = (levelHeight - height) / 2;
            double downsample = slide.LevelDownsamples[level];
            // Level coordinates whose level-0 origin maps back to whole level pixels, as TryReadRgb requires.
            long x = (long)Math.Round(levelX * downsample), y = (long)Math.Round(levelY * downsample);
            if (x / downsample != Math.Floor(x / downsample) || y / downsample != Math.Floor(y / downsample))
            {
                x = 0;
                y = 0;
            }

            (levelX, levelY) = ((long)(x / downsample), (long)(y / downsample)); // where the region really is, for the message

            if (TryReadRgb(slide, x, y, level, width, height) is not { } direct)
            {
                // libvips cannot decode it: reads of this level go to OpenSlide, as any failed direct read does.
                _levels[level]!.Dispose();
                _levels[level] = null;
                continue;
            }

            Raster reference;
            try
            {
                reference = slide.ReadRgbThroughOpenSlide(x, y, level, width, height);
            }
            catch (SlideException error)
            {
                return $"OpenSlide could not read level {level} for the check ({error.Message})";
            }

            if (_jpegTiles[level] is not null && !direct.Pixels.AsSpan().SequenceEqual(reference.Pixels))
            {
                // TurboJPEG's pixels are not OpenSlide's here: the level is decoded by libvips, and checked as such.
                _jpegTiles[level]!.Dispose();
                _jpegTiles[level] = null;
                if (TryReadRgb(slide, x, y, level, width, height) is not { } again)
                {
                    _levels[level]!.Dispose();
                    _levels[level] = null;
                    continue;
                }

                direct = again;
            }

            ReadOnlySpan<byte> a = direct.Pixels, b = reference.Pixels;
            int differing = 0, largest = 0, first = -1;
            for (int i = 0; i < a.Length; i++)
            {
                int difference = Math.Abs(a[i] - b[i]);
                if (difference != 0)
                {
                    differing++;
                    largest = Math.Max(largest, difference);
                    first = first < 0 ? i : first;
                }
            }

            if (differing > 0)
            {
                int pixel = first / 3;
                return $"libvips and OpenSlide decode level {level} differently ({differing} of {a.Length} channel values differ, by up to {largest}; " +
                       $"at ({levelX + (pixel % width)}, {levelY + (pixel / width)}) libvips gives ({a[pixel * 3]}, {a[(pixel * 3) + 1]}, {a[(pixel * 3) + 2]}), " +
                       $"OpenSlide ({b[pixel * 3]}, {b[(pixel * 3) + 1]}, {b[(pixel * 3) + 2]}))";
            }
        }

        return null;
    }

    /// <summary>
    /// The RGB pixels of the region, or null when this reader cannot give exactly what OpenSlide would
    /// (partly outside the level, fractional level coordinates, no page for the level, a decode failure).
    /// </summary>
    public Raster? TryReadRgb(Slide slide, long x, long y, int level, int width, int height)
    {
        if (_levels[level] is not { } page || width == 0 || height == 0)
        {
            return null;
        }

        double downsample = slide.LevelDownsamples[level];
        double levelX = x / downsample, levelY = y / downsample;
        (long levelWidth, long levelHeight) = slide.LevelDimensions[level];
        if (levelX != Math.Floor(levelX) || levelY != Math.Floor(levelY) || levelX < 0 || levelY < 0
            || levelX + width > levelWidth || levelY + height > levelHeight)
        {
            return null;
        }

        var pixels = new byte[width * height * 3];
        if (_jpegTiles[level] is { } tiles && tiles.TryRead((int)levelX, (int)levelY, width, height, pixels))
        {
            return new Raster(width, height, 3, pixels);
        }

        // Otherwise (every byte is rewritten below): regions are fetched on the calling thread, as
        // vips_image_write_to_memory of a crop would start libvips' thread pool for each read, which for a 256² tile costs
        // more than decoding it. A large read (a whole level for tissue detection or an overview) is split into bands
        // fetched on the engine's threads instead.
        int bands = Math.Min(EngineThreads.Count, height / BandRows);
        if (bands < 2)
        {
            return Fetch(page, (int)levelX, (int)levelY, width, height, pixels) ? new Raster(width, height, 3, pixels) : null;
        }

        bool fetched = true;
        Parallel.For(0, bands, EngineThreads.ParallelOptions, band =>
        {
            int first = (int)((long)height * band / bands), last = (int)((long)height * (band + 1) / bands);
            if (!Fetch(page, (int)levelX, (int)levelY + first, width, last - first, pixels.AsSpan(first * width * 3)))
            {
                Volatile.Write(ref fetched, false);
            }
        });
        return fetched ? new Raster(width, height, 3, pixels) : null;
    }

    /// <summary>Rows below which a band of a large read is not worth a thread.</summary>
    private const int BandRows = 512;

    /// <summary>
    /// Decodes the rectangle into <paramref name="destination"/> (RGB rows); false when libvips cannot (e.g. a corrupt tile:
    /// OpenSlide reads it again and reports, and latches, its own error).
    /// </summary>
    private static bool Fetch(VipsImageHandle page, int left, int top, int width, int height, Span<byte> destination)
    {
        IntPtr region = VipsNative.RegionNew(page);
        if (region == IntPtr.Zero)
        {
            _ = ImageCodec.TakeError();
            return false;
        }

        try
        {
            IntPtr memory = VipsNative.RegionFetch(region, left, top, width, height, out nuint length);
            if (memory == IntPtr.Zero)
            {
                _ = ImageCodec.TakeError();
                return false;
            }

            try
            {
                int bytes = width * height * 3;
                if ((long)length != bytes)
                {
                    return false;
                }

                unsafe
                {
                    new ReadOnlySpan<byte>((void*)memory, bytes).CopyTo(destination);
                }

                return true;
            }
            finally
            {
                VipsNative.Free(memory);
            }
        }
        finally
        {
            VipsNative.ObjectUnref(region);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (VipsImageHandle? level in _levels)
        {
            level?.Dispose();
        }

        foreach (TiffJpegTiles? tiles in _jpegTiles)
        {
            tiles?.Dispose();
        }
    }
}
