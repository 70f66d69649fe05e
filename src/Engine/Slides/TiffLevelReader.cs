using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Interop;

namespace SlidePlugin.Engine.Slides;

/// <summary>
/// A faster road to the pixels of TIFF-family slides (generic tiled TIFF, Aperio SVS): each pyramid level
/// that is an 8-bit RGB TIFF page libvips can decode is read through libvips, which decodes the stored tiles
/// with the same libjpeg-turbo, without OpenSlide 3.4's per-pixel cairo compositing (about 25 ns a pixel,
/// most of a tile's cost). Used only where the result is the same as OpenSlide's: a region wholly inside
/// the level, at whole-pixel level coordinates. Anything else, or any failure, goes through OpenSlide, so
/// OpenSlide stays the authority on pixels and errors (and tests compare both against openslide-python).
/// </summary>
internal sealed class TiffLevelReader : IDisposable
{
    private static readonly HashSet<string> TiffVendors = new(StringComparer.Ordinal) { "generic-tiff", "aperio" };

    private readonly VipsImageHandle?[] _levels;

    private TiffLevelReader(VipsImageHandle?[] levels) => _levels = levels;

    /// <summary>Which levels this reader serves.</summary>
    public IReadOnlyList<bool> Levels => _levels.Select(l => l is not null).ToArray();

    /// <summary>The reader for <paramref name="slide"/>, or null when no level qualifies.</summary>
    public static TiffLevelReader? TryOpen(Slide slide)
    {
        if (slide.Vendor is not { } vendor || !TiffVendors.Contains(vendor))
        {
            return null;
        }

        ImageCodec.EnsureInitialized();
        var levels = new VipsImageHandle?[slide.LevelCount];
        // TIFF directories: every level, plus thumbnail, label and macro for SVS; match levels by size.
        for (int page = 0; page < 64 && levels.Any(l => l is null); page++)
        {
            if (VipsNative.TiffLoad(slide.Path, out IntPtr raw, "page", page, "access", VipsNative.AccessRandom, "fail", 1, IntPtr.Zero) != 0 || raw == IntPtr.Zero)
            {
                _ = ImageCodec.TakeError(); // past the last page, or one libvips cannot read: not an error here
                break;
            }

            var image = new VipsImageHandle(raw);
            int level = Enumerable.Range(0, slide.LevelCount).FirstOrDefault(l => levels[l] is null
                && slide.LevelDimensions[l] == (VipsNative.ImageGetWidth(image), VipsNative.ImageGetHeight(image)), -1);
            if (level >= 0 && VipsNative.ImageGetBands(image) == 3 && VipsNative.ImageGetFormat(image) == VipsNative.FormatUChar)
            {
                levels[level] = image;
            }
            else
            {
                image.Dispose();
            }
        }

        return levels.Any(l => l is not null) ? new TiffLevelReader(levels) : null;
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

        if (VipsNative.Crop(page, out IntPtr cropped, (int)levelX, (int)levelY, width, height, IntPtr.Zero) != 0 || cropped == IntPtr.Zero)
        {
            _ = ImageCodec.TakeError();
            return null;
        }

        using var region = new VipsImageHandle(cropped);
        try
        {
            return ImageCodec.ToRaster(region);
        }
        catch (ImageCodecException)
        {
            return null; // e.g. a corrupt tile: OpenSlide reads it again and reports (and latches) its own error
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (VipsImageHandle? level in _levels)
        {
            level?.Dispose();
        }
    }
}
