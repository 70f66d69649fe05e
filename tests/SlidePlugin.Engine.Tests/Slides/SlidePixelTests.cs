using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Slides;

/// <summary>Pixels read through our binding compared byte for byte with openslide-python's.</summary>
public class SlidePixelTests
{
    private static async Task<byte[][]> ReferenceAsync(string slide, params string[] specs) =>
        (await ExternalProcess.ReferencePixelsAsync(TestData.Path("slides", slide), specs)).Pixels;

    public static TheoryData<string, long, long, int, int, int> Regions => new()
    {
        { "CMU-1-Small-Region.svs", 0, 0, 0, 256, 256 },
        { "CMU-1-Small-Region.svs", 1000, 1500, 0, 300, 200 },
        { "CMU-1-Small-Region.svs", 2100, 2900, 0, 240, 240 },  // past the right and bottom edges
        { "CMU-1-Small-Region.svs", -20, -30, 0, 64, 64 },      // before the top-left corner
        { "CMU-1-Small-Region.svs", 5000, 5000, 0, 10, 10 },    // wholly outside: transparent
        { "CMU-1-Small-Region.svs", 7, 3, 0, 1, 1 },
        { "CMU-1-Small-Region.svs", -10, 5, 0, 2240, 2970 },   // large: read in bands on parallel threads
        { "boxes.tiff", 0, 0, 0, 300, 250 },
        { "boxes.tiff", 0, 0, 1, 150, 125 },
        { "boxes.tiff", 50, 40, 2, 30, 20 },
        // Not boxes.tiff level 3 (37 x 31, Deflate, 64 px tiles): OpenSlide 3.4.1 reads levels smaller than a tile through
        // libtiff's RGBA interface, which with libtiff 4.5 leaves rows unwritten; the bytes depend on earlier reads.
    };

    [Theory]
    [MemberData(nameof(Regions))]
    public async Task ReadRegion_RealSlide_PixelsIdenticalToOpenSlidePython(string file, long x, long y, int level, int width, int height)
    {
        byte[] expected = (await ReferenceAsync(file, $"region:{x},{y},{level},{width},{height}"))[0];
        using Slide slide = Slide.Open(TestData.Path("slides", file));

        Raster image = slide.ReadRegion(x, y, level, width, height);

        Assert.Equal(width, image.Width);
        Assert.Equal(height, image.Height);
        Assert.Equal(expected, image.Pixels);
    }

    public static TheoryData<string, long, long, int, int, int, bool> HeldRegions => new()
    {
        { "CMU-1-Small-Region.svs", 1000, 1500, 0, 300, 200, true },
        { "CMU-1-Small-Region.svs", 0, 0, 0, 2220, 2967, true },       // the whole level
        { "CMU-1-Small-Region.svs", 2100, 2900, 0, 240, 240, false },  // crosses the edge: read by OpenSlide
        { "CMU-1-Small-Region.svs", -20, -30, 0, 64, 64, false },
        { "boxes.tiff", 20, 40, 1, 100, 60, true },                    // downsample 2, origin on its multiples
        { "boxes.tiff", 21, 40, 1, 100, 60, false },                   // origin between level-1 pixels: OpenSlide resamples
        { "boxes.tiff", 48, 40, 2, 20, 20, false },                    // downsample 4.016: never cut
    };

    [Theory]
    [MemberData(nameof(HeldRegions))]
    public async Task HoldLevel_RegionOnTheHeldLevel_PixelsIdenticalToOpenSlidePython(string file, long x, long y, int level, int width, int height, bool cutFromMemory)
    {
        byte[] expected = (await ReferenceAsync(file, $"region:{x},{y},{level},{width},{height}"))[0];
        using Slide slide = Slide.Open(TestData.Path("slides", file));
        Raster rgbBefore = slide.ReadRegionRgb(x, y, level, width, height);

        using (slide.HoldLevel(level))
        {
            Assert.Equal(cutFromMemory, slide.TryCutFromHeld(x, y, level, width, height) is not null);
            Assert.Equal(expected, slide.ReadRegion(x, y, level, width, height).Pixels);
            Assert.Equal(rgbBefore.Pixels, slide.ReadRegionRgb(x, y, level, width, height).Pixels);
        }

        Assert.Null(slide.TryCutFromHeld(x, y, level, width, height));
    }

    [Theory]
    [InlineData("CMU-1-Small-Region.svs", 0, 4.008, ResizeKernel.Linear)]    // the analysis's tissue view
    [InlineData("CMU-1-Small-Region.svs", 0, 3.0, ResizeKernel.Lanczos3)]
    [InlineData("CMU-1-Small-Region.svs", 0, 1.0, ResizeKernel.Lanczos3)]    // no shrink: the level itself
    [InlineData("boxes.tiff", 1, 2.5, ResizeKernel.Lanczos3)]
    public void ReadDownsampled_LevelHeld_SameBytesAsWithout(string file, int level, double downsample, ResizeKernel kernel)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", file));
        Raster expected = slide.ReadDownsampled(downsample, kernel);

        using (slide.HoldLevel(level))
        {
            Raster view = slide.ReadDownsampled(downsample, kernel);

            Assert.Equal((expected.Width, expected.Height, expected.Bands), (view.Width, view.Height, view.Bands));
            Assert.Equal(expected.Pixels, view.Pixels);
        }
    }

    [Fact]
    public void HoldLevel_AnotherLevelRead_GoesToOpenSlide()
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "boxes.tiff"));

        using IDisposable held = slide.HoldLevel(1);

        Assert.Null(slide.TryCutFromHeld(0, 0, 0, 10, 10));
        Assert.NotNull(slide.TryCutFromHeld(0, 0, 1, 10, 10));
    }

    [Theory]
    [MemberData(nameof(Regions))]
    public void ReadRegionRgb_AnyRegion_SameBytesAsReadRegionFlattened(string file, long x, long y, int level, int width, int height)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", file));

        Raster rgb = slide.ReadRegionRgb(x, y, level, width, height);

        Assert.Equal(3, rgb.Bands);
        Assert.Equal(slide.ReadRegion(x, y, level, width, height).Flatten(slide.BackgroundColor).Pixels, rgb.Pixels);
    }

    [Theory]
    [InlineData("CMU-1-Small-Region.svs", "label")]
    [InlineData("CMU-1-Small-Region.svs", "macro")]
    [InlineData("CMU-1-Small-Region.svs", "thumbnail")]
    [InlineData("small.svs", "thumbnail")]
    public async Task ReadAssociatedImage_RealSlide_PixelsIdenticalToOpenSlidePython(string file, string name)
    {
        byte[] expected = (await ReferenceAsync(file, $"associated:{name}"))[0];
        using Slide slide = Slide.Open(TestData.Path("slides", file));

        Raster image = slide.ReadAssociatedImage(name);

        Assert.Equal((image.Width, image.Height), ((int)slide.AssociatedImageDimensions[name].Width, (int)slide.AssociatedImageDimensions[name].Height));
        Assert.Equal(expected, image.Pixels);
    }

    [Fact]
    public void ReadRegion_CorruptTile_ReadFailedThenEveryCallFailsWithTheLatchedError()
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "unreadable.svs"));

        var first = Assert.Throws<SlideException>(() => slide.ReadRegion(0, 0, 0, 16, 16));
        var later = Assert.Throws<SlideException>(() => slide.GetBestLevelForDownsample(2));

        Assert.Equal(SlideErrorKind.ReadFailed, first.Kind);
        Assert.Contains("Bogus marker length", first.Message, StringComparison.Ordinal);
        Assert.Contains("unreadable.svs", first.Message, StringComparison.Ordinal);
        Assert.Equal(first.Message, later.Message);
    }

    [Theory]
    [InlineData(1, 10, 10, SlideErrorKind.OutOfRange)]     // CMU has one level
    [InlineData(-1, 10, 10, SlideErrorKind.OutOfRange)]
    [InlineData(0, -1, 10, SlideErrorKind.InvalidRequest)]
    [InlineData(0, 100_000, 100_000, SlideErrorKind.InvalidRequest)] // 10^10 pixels: refused before allocating 40 GB
    public void ReadRegion_BadRequest_RefusedWithoutLatching(int level, int width, int height, SlideErrorKind kind)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));

        var error = Assert.Throws<SlideException>(() => slide.ReadRegion(0, 0, level, width, height));

        Assert.Equal(kind, error.Kind);
        slide.ReadRegion(0, 0, 0, 4, 4); // the slide is still usable: a bad request does not latch
    }

    [Fact]
    public void ReadAssociatedImage_UnknownName_InvalidRequestListingTheNames()
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));

        var error = Assert.Throws<SlideException>(() => slide.ReadAssociatedImage("overview"));

        Assert.Equal(SlideErrorKind.InvalidRequest, error.Kind);
        Assert.Contains("label, macro, thumbnail", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadRegion_ManyThreadsAtOnce_SameBytesAsOneThread()
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        (long X, long Y)[] tiles = Enumerable.Range(0, 48).Select(i => ((long)(i % 8) * 256, (long)(i / 8) * 256)).ToArray();
        byte[][] sequential = tiles.Select(t => slide.ReadRegion(t.X, t.Y, 0, 256, 256).Pixels).ToArray();

        byte[][] parallel = await Task.WhenAll(tiles.Select(t => Task.Run(() => slide.ReadRegion(t.X, t.Y, 0, 256, 256).Pixels)));

        for (int i = 0; i < tiles.Length; i++)
        {
            Assert.Equal(sequential[i], parallel[i]);
        }
    }

    [Theory]
    [InlineData(0x00000000u, 0, 0, 0, 0)]
    [InlineData(0xFF102030u, 0x10, 0x20, 0x30, 255)]
    [InlineData(0x80402010u, 0x7F, 0x3F, 0x1F, 0x80)] // 255 * 0x40 / 0x80 = 127 (truncated, as openslide-python)
    [InlineData(0x01010101u, 255, 255, 255, 1)]
    public void PremultipliedArgbToRgba_Examples_MatchOpenSlidePythonArithmetic(uint argb, int r, int g, int b, int a)
    {
        var rgba = new byte[4];

        PixelConversion.PremultipliedArgbToRgba([argb], rgba);

        Assert.Equal(new[] { (byte)r, (byte)g, (byte)b, (byte)a }, rgba);
    }

    [Fact]
    public void PremultipliedArgbToRgb_EveryAlpha_SameAsRgbaThenFlatten()
    {
        // Every alpha with colour values at and below it (valid premultiplied), on a non-white background.
        var argb = new List<uint>();
        for (uint a = 0; a < 256; a++)
        {
            foreach (uint c in new uint[] { 0, a / 3, a / 2, a })
            {
                argb.Add((a << 24) | (c << 16) | ((a - c) << 8) | (c / 2));
            }
        }

        (byte, byte, byte) background = (250, 128, 3);
        var rgba = new byte[argb.Count * 4];
        PixelConversion.PremultipliedArgbToRgba(argb.ToArray(), rgba);
        byte[] expected = new Raster(argb.Count, 1, 4, rgba).Flatten(background).Pixels;
        var rgb = new byte[argb.Count * 3];

        PixelConversion.PremultipliedArgbToRgb(argb.ToArray(), rgb, background);

        Assert.Equal(expected, rgb);
    }

    [Theory]
    [InlineData("CMU-1-Small-Region.svs", new[] { true })]
    [InlineData("boxes.tiff", new[] { true, true, false, false })] // levels 2 and 3 (Deflate) are smaller than a 64 px tile
    [InlineData("unreadable.svs", new[] { false })] // libvips cannot decode its corrupt tile: OpenSlide reads it, and reports and latches the error
    public void DirectReadLevels_TiffFamilySlides_EveryLevelReadWithoutCompositing(string file, bool[] expected)
    {
        // The pixel tests above then prove the direct path gives openslide-python's bytes.
        using Slide slide = Slide.Open(TestData.Path("slides", file));

        Assert.Equal(expected, slide.DirectReadLevels);
    }

    [Fact]
    public void ReadRegionRgb_CmuJpegTilesDecodedByTurboJpeg_SameBytesAsOpenSlide()
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        Assert.Equal([true], slide.JpegTileLevels);

        // The whole level (decoded on the engine's threads), a region across tile edges, the bottom-right corner, one pixel.
        foreach ((long x, long y, int width, int height) in new[] { (0L, 0L, 2220, 2967), (100L, 77L, 1000, 700), (2000L, 2900L, 220, 67), (239L, 239L, 1, 1) })
        {
            Assert.True(slide.ReadRgbThroughOpenSlide(x, y, 0, width, height).Pixels.AsSpan().SequenceEqual(slide.ReadRegionRgb(x, y, 0, width, height).Pixels),
                $"region {width}x{height} at ({x}, {y})");
        }

        // A 256 px grid over 240 px TIFF tiles, row by row, twice: every read takes parts of up to four tiles, most of them
        // from the decoded-tile cache, which holds fewer tiles than the level has (slots are reused along the way).
        for (int pass = 0; pass < 2; pass++)
        {
            for (int y = 0; y + 256 <= 2967; y += 256)
            {
                for (int x = 0; x + 256 <= 2220; x += 256)
                {
                    Assert.True(slide.ReadRgbThroughOpenSlide(x, y, 0, 256, 256).Pixels.AsSpan().SequenceEqual(slide.ReadRegionRgb(x, y, 0, 256, 256).Pixels),
                        $"pass {pass}: tile at ({x}, {y})");
                }
            }
        }
    }
}
