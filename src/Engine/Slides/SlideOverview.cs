using SlidePlugin.Engine.Imaging;

namespace SlidePlugin.Engine.Slides;

/// <summary>
/// The whole slide kept small in memory (RGB on the background colour, at most <see cref="MaxEdge"/> pixels a side),
/// from which coarse Deep Zoom tiles and small thumbnails are cut instead of decoding the level they would otherwise read.
/// A single-level slide such as CMU-1-Small-Region has nothing coarser than level 0, so without it every low-zoom tile
/// decodes up to the whole slide. Built once per open slide by <see cref="Slide.GetOverview"/>.
/// </summary>
public sealed class SlideOverview
{
    /// <summary>Largest edge of an overview: 3 MiB of RGB at most, so a cache of open slides stays small.</summary>
    public const int MaxEdge = 1024;

    /// <summary>Largest level read whole to make one (64 MP); past that, reads go to the slide as before.</summary>
    public const long MaxSourcePixels = 1L << 26;

    private SlideOverview(Raster pixels, double downsample)
    {
        Pixels = pixels;
        Downsample = downsample;
    }

    /// <summary>The overview itself, H x W x 3 (shared: read it, never write it).</summary>
    public Raster Pixels { get; }

    /// <summary>Level-0 pixels a pixel of the overview (a power of two).</summary>
    public double Downsample { get; }

    /// <summary>
    /// The level-0 rectangle (<paramref name="x"/>, <paramref name="y"/>, <paramref name="width"/>, <paramref name="height"/>)
    /// as <paramref name="outWidth"/> x <paramref name="outHeight"/> RGB: the overview pixels that cover it, resized when
    /// that is not the output size. Meant for outputs at or below the overview's scale.
    /// </summary>
    public Raster Read(long x, long y, double width, double height, int outWidth, int outHeight)
    {
        int left = Clamp(x / Downsample, Pixels.Width - 1), top = Clamp(y / Downsample, Pixels.Height - 1);
        int right = Math.Max(left + 1, Clamp((x + width) / Downsample, Pixels.Width));
        int bottom = Math.Max(top + 1, Clamp((y + height) / Downsample, Pixels.Height));
        return Slide.Scaled(Pixels.Crop(left, top, right - left, bottom - top), outWidth, outHeight);

        static int Clamp(double value, int max) => (int)Math.Clamp(Math.Round(value, MidpointRounding.AwayFromZero), 0, max);
    }

    /// <summary>
    /// Reads <paramref name="slide"/>'s best level for <paramref name="downsample"/> whole and reduces it to ceil(slide /
    /// downsample) a side. The level is first padded on the background to exactly that many overview pixels: reduced by a
    /// factor a fraction off (2967 rows to 742 is 3.9987), the pixels far from the origin would shift by part of a pixel,
    /// which on tissue differs from the tile read directly as much as a different resampler does.
    /// </summary>
    internal static SlideOverview Make(Slide slide, double downsample)
    {
        int level = slide.GetBestLevelForDownsample(downsample);
        (long levelWidth, long levelHeight) = slide.LevelDimensions[level];
        double shrink = downsample / slide.LevelDownsamples[level];
        int width = (int)Math.Ceiling(slide.Dimensions.Width / downsample), height = (int)Math.Ceiling(slide.Dimensions.Height / downsample);
        Raster read = slide.ReadRegionRgb(0, 0, level, checked((int)levelWidth), checked((int)levelHeight));
        int paddedWidth = Math.Max(read.Width, (int)Math.Round(width * shrink)), paddedHeight = Math.Max(read.Height, (int)Math.Round(height * shrink));
        Raster padded = read.Width == paddedWidth && read.Height == paddedHeight ? read : Padded(read, paddedWidth, paddedHeight, slide.BackgroundColor);
        return new SlideOverview(ImageCodec.Resize(padded, width, height), downsample);
    }

    /// <summary><paramref name="rgb"/> in the top-left of a <paramref name="width"/> x <paramref name="height"/> RGB raster of <paramref name="background"/>.</summary>
    private static Raster Padded(Raster rgb, int width, int height, (byte R, byte G, byte B) background)
    {
        var pixels = new byte[width * height * 3];
        for (int i = 0; i < pixels.Length; i += 3)
        {
            (pixels[i], pixels[i + 1], pixels[i + 2]) = background;
        }

        for (int row = 0; row < rgb.Height; row++)
        {
            rgb.Pixels.AsSpan(row * rgb.Width * 3, rgb.Width * 3).CopyTo(pixels.AsSpan(row * width * 3));
        }

        return new Raster(width, height, 3, pixels);
    }
}
