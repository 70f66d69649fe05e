using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Slides;

/// <summary>
/// Slides made here by tests/reference/make_tiff_slide.py (2000 x 1500, white glass and pink tissue, 256 px tiles, two
/// levels): Aperio SVS with each compression the direct TIFF path reads, Aperio's two JPEG 2000 codes it must not, a
/// generic TIFF, and a generic LZW TIFF with a level smaller than a tile, which OpenSlide 3.4.1 itself reads shifted.
/// </summary>
public sealed class GeneratedTiffSlides : IAsyncLifetime
{
    public static readonly string[] Aperio = ["jpeg", "jpeg-rgb", "lzw", "deflate", "none", "j2k-ycbcr", "j2k-rgb"];

    public string Folder { get; } = Directory.CreateTempSubdirectory("slideplugin-tiff-slides").FullName;

    public string PathOf(string variant) => System.IO.Path.Combine(Folder, variant.StartsWith("generic", StringComparison.Ordinal) ? variant + ".tiff" : variant + ".svs");

    public async Task InitializeAsync()
    {
        foreach (string compression in Aperio)
        {
            await ExternalProcess.RunReferenceScriptAsync("make_tiff_slide.py", PathOf(compression), "--compression", compression);
        }

        await ExternalProcess.RunReferenceScriptAsync("make_tiff_slide.py", PathOf("generic-jpeg"), "--compression", "jpeg", "--format", "generic");
        await ExternalProcess.RunReferenceScriptAsync("make_tiff_slide.py", PathOf("generic-lzw-small-level"), "--compression", "lzw", "--format", "generic", "--levels", "3");
    }

    public Task DisposeAsync()
    {
        Directory.Delete(Folder, recursive: true);
        return Task.CompletedTask;
    }
}

/// <summary>Reads of <see cref="GeneratedTiffSlides"/> through every API, compared with openslide-python pixel for pixel.</summary>
public sealed class DirectTiffReadTests(GeneratedTiffSlides slides) : IClassFixture<GeneratedTiffSlides>
{
    public static TheoryData<string> Variants => [.. GeneratedTiffSlides.Aperio, "generic-jpeg", "generic-lzw-small-level"];

    [Theory]
    [InlineData("jpeg", new[] { true, true })]      // YCbCr
    [InlineData("jpeg-rgb", new[] { true, true })]  // RGB, as Aperio writes: decoded with a no-transform marker
    [InlineData("generic-jpeg", new[] { true, true })]
    [InlineData("lzw", new[] { false, false })]
    [InlineData("none", new[] { false, false })]
    public void JpegTileLevels_EachCompression_JpegLevelsDecodedByTurboJpeg(string variant, bool[] expected)
    {
        // The pixel tests of this class then compare TurboJPEG's tiles with openslide-python's.
        using Slide slide = Slide.Open(slides.PathOf(variant));

        Assert.Equal(expected, slide.JpegTileLevels);
    }

    [Theory]
    [InlineData("jpeg", new[] { true, true })]
    [InlineData("jpeg-rgb", new[] { true, true })]
    [InlineData("lzw", new[] { true, true })]
    [InlineData("deflate", new[] { true, true })]
    [InlineData("none", new[] { true, true })]
    [InlineData("generic-jpeg", new[] { true, true })]
    [InlineData("generic-lzw-small-level", new[] { true, true, false })] // level 2 (125 x 93) is smaller than a tile
    [InlineData("j2k-ycbcr", new[] { false, false })]
    [InlineData("j2k-rgb", new[] { false, false })]
    public void DirectReadLevels_EachCompression_OnlyWhereProvenEqualToOpenSlide(string variant, bool[] expected)
    {
        using Slide slide = Slide.Open(slides.PathOf(variant));

        Assert.Equal(expected, slide.DirectReadLevels);
        string? reason = variant switch
        {
            "j2k-ycbcr" => "level 0 has compression 33003 (Aperio JPEG 2000, YCbCr); level 1 has compression 33003 (Aperio JPEG 2000, YCbCr)",
            "j2k-rgb" => "level 0 has compression 33005 (Aperio JPEG 2000, RGB); level 1 has compression 33005 (Aperio JPEG 2000, RGB)",
            _ => null,
        };
        Assert.Equal(reason, slide.DirectReadFallback);
    }

    [Theory]
    [InlineData("j2k-rgb", 33005)]
    [InlineData("j2k-ycbcr", 33003)]
    public void TryOpen_CompressionLetThroughWhereLibvipsDecodesOtherPixels_CheckTurnsTheSlideOff(string variant, int compression)
    {
        // The open-time check is the second guard: with Aperio's JPEG 2000 on the list, libvips would decode it (wrongly).
        using Slide slide = Slide.Open(slides.PathOf(variant));

        TiffLevelReader? reader = TiffLevelReader.TryOpen(slide, new HashSet<int> { compression }, out string? fallback, out bool pixelsDiffered);

        Assert.Null(reader);
        Assert.True(pixelsDiffered);
        Assert.StartsWith("libvips and OpenSlide decode level 0 differently", fallback, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task ReadRegion_EveryLevelInsideAndAcrossTheEdge_PixelsIdenticalToOpenSlidePython(string variant)
    {
        string path = slides.PathOf(variant);
        using Slide slide = Slide.Open(path);
        var specs = new List<string> { "region:0,0,0,256,256", "region:512,384,0,300,200", "region:1900,1400,0,200,200" };
        for (int level = 1; level < slide.LevelCount; level++)
        {
            (long width, long height) = slide.LevelDimensions[level];
            if (variant != "generic-lzw-small-level" || level < 2)
            {
                // Not the level smaller than a tile: OpenSlide 3.4.1 reads it through libtiff's RGBA interface, which
                // with libtiff 4.5 leaves rows unwritten (other pixels on each read); the direct path leaves it alone.
                specs.Add($"region:0,0,{level},{width},{height}");
            }
        }

        byte[][] expected = (await ExternalProcess.ReferencePixelsAsync(path, [.. specs])).Pixels;

        for (int i = 0; i < specs.Count; i++)
        {
            int[] v = [.. specs[i]["region:".Length..].Split(',').Select(int.Parse)];
            Assert.True(expected[i].AsSpan().SequenceEqual(slide.ReadRegion(v[0], v[1], v[2], v[3], v[4]).Pixels), $"{variant} {specs[i]}");
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task TileGrid_TilesAtTheSlidesResolution_PixelsIdenticalToOpenSlidePython(string variant)
    {
        // The tiles of StreamTiles, `tiles` and the analysis all come from TileGrid.Read.
        string path = slides.PathOf(variant);
        using Slide slide = Slide.Open(path);
        TileGrid grid = TileGrid.Build(slide, 0.499, new TileGridOptions { TileSize = 256, TargetMpp = 0.499, MinTissueFraction = 0 }, TissueDetector.Detect(slide, 0.499));
        Tile[] chosen = [grid.Tiles[0], grid.Tiles[grid.Tiles.Count / 2], grid.Tiles[^1]];

        byte[][] expected = (await ExternalProcess.ReferencePixelsAsync(path, [.. chosen.Select(t => $"region:{t.X},{t.Y},0,{t.Width},{t.Height}")])).Pixels;

        for (int i = 0; i < chosen.Length; i++)
        {
            Raster tile = grid.Read(slide, chosen[i]);
            Assert.True(ToRgb(expected[i]).AsSpan().SequenceEqual(tile.Pixels), $"{variant} tile at ({chosen[i].X}, {chosen[i].Y})");
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task DeepZoom_UnscaledTiles_PixelsIdenticalToOpenSlidePython(string variant)
    {
        string path = slides.PathOf(variant);
        using Slide slide = Slide.Open(path);
        var dz = new DeepZoomGenerator(slide);
        int top = dz.LevelCount - 1;
        (long columns, long rows) = dz.LevelTiles[top];

        string folder = Directory.CreateTempSubdirectory("slideplugin-dz").FullName;
        try
        {
            await ExternalProcess.RunReferenceScriptAsync("openslide_deepzoom.py", path, "254", "1", "0", folder, $"{top}:0,0", $"{top}:{columns / 2},{rows / 2}");
            Assert.Equal(File.ReadAllBytes(System.IO.Path.Combine(folder, "0.rgb")), dz.GetTile(top, 0, 0).Pixels);
            Assert.Equal(File.ReadAllBytes(System.IO.Path.Combine(folder, "1.rgb")), dz.GetTile(top, columns / 2, rows / 2).Pixels);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task GetThumbnail_AnyCompression_WhiteGlassStaysWhiteAndCloseToOpenSlidePython(string variant)
    {
        string path = slides.PathOf(variant);
        (byte[][] pixels, string sizes) = await ExternalProcess.ReferencePixelsAsync(path, "thumbnail:300");
        int[] size = [.. sizes.Split(' ', StringSplitOptions.TrimEntries).Select(int.Parse)];
        using Slide slide = Slide.Open(path);

        Raster thumbnail = slide.GetThumbnail(300);

        Assert.Equal((size[0], size[1]), (thumbnail.Width, thumbnail.Height));
        Assert.Equal([255, 255, 255], thumbnail[0, 0].ToArray());
        byte[] expected = ToRgb(pixels[0]);
        double meanAbsoluteError = expected.Zip(thumbnail.Pixels, (a, b) => Math.Abs(a - b)).Average();
        Assert.InRange(meanAbsoluteError, 0, 2.0); // only the resamplers differ (PIL's and libvips' Lanczos)
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void TissueDetector_AnyCompression_FindsTheBlobsNotTheGlass(string variant)
    {
        using Slide slide = Slide.Open(slides.PathOf(variant));

        TissueMask tissue = TissueDetector.Detect(slide, 0.499);

        // The three blobs cover about a quarter of the image; misread white glass would be tissue everywhere.
        Assert.InRange(tissue.TissueFraction, 0.15, 0.45);
    }

    private static byte[] ToRgb(byte[] rgba)
    {
        var rgb = new byte[rgba.Length / 4 * 3];
        for (int i = 0, j = 0; i < rgba.Length; i += 4, j += 3)
        {
            (rgb[j], rgb[j + 1], rgb[j + 2]) = (rgba[i], rgba[i + 1], rgba[i + 2]);
        }

        return rgb;
    }
}
