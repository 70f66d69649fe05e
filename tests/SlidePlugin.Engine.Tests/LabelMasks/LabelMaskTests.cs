using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.LabelMasks;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.LabelMasks;

/// <summary>Label tables, class statistics and the patch cutter on generated masks whose counts are known by construction.</summary>
public sealed class LabelMaskTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-masks").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static LabelTable Bcss() => LabelTable.Load(TestData.Path("bcss", "gtruth_codes.tsv"));

    /// <summary>A mask of <paramref name="width"/> x <paramref name="height"/>: code 1 (tumor) left of column <paramref name="split"/>, code 2 (stroma) right of it, an outside_roi (0) top band of <paramref name="band"/> rows.</summary>
    private static LabelMask Halves(int width, int height, int split, int band)
    {
        var codes = new byte[width * height];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                codes[(y * width) + x] = y < band ? (byte)0 : x < split ? (byte)1 : (byte)2;
            }
        }

        return new LabelMask(width, height, codes);
    }

    [Fact]
    public void RenderChart_TwoClasses_BarsInClassColoursLargestFirstProportional()
    {
        LabelTable table = Bcss();
        ClassCounts counts = ClassStatistics.Of("m", Halves(300, 260, 100, 0), table);   // tumor 26000, stroma 52000

        Raster chart = ClassStatistics.RenderChart(counts, table);

        int Run(int row, (byte, byte, byte) colour) => Enumerable.Range(0, chart.Width)
            .Count(x => chart[x, 6 + (row * ClassStatistics.ChartRowHeight) + (ClassStatistics.ChartBarHeight / 2)] is var p && (p[0], p[1], p[2]) == colour);
        Assert.Equal(ClassStatistics.ChartBarWidth, Run(0, table[2]!.Color));          // stroma, the largest, first and full length
        Assert.Equal(ClassStatistics.ChartBarWidth / 2, Run(1, table[1]!.Color));      // tumor, half of it
        Assert.Equal(6 + (2 * ClassStatistics.ChartRowHeight) + 6, chart.Height);       // two rows: classes absent from the mask are left out
    }

    [Fact]
    public void Load_BcssGtruthCodes_22ClassesWithTheBcssColours()
    {
        LabelTable table = Bcss();

        Assert.Equal(22, table.Classes.Count);
        Assert.Equal(("outside_roi", (byte)0, ((byte)0, (byte)0, (byte)0)), (table[0]!.Name, table[0]!.Code, table[0]!.Color));
        Assert.Equal(("tumor", ((byte)128, (byte)0, (byte)0)), (table[1]!.Name, table[1]!.Color));         // maroon
        Assert.Equal(("stroma", ((byte)0, (byte)128, (byte)0)), (table[2]!.Name, table[2]!.Color));        // green
        Assert.Equal(("lymphocytic_infiltrate", ((byte)128, (byte)128, (byte)0)), (table[3]!.Name, table[3]!.Color)); // olive
        Assert.Equal(("necrosis_or_debris", ((byte)0, (byte)0, (byte)128)), (table[4]!.Name, table[4]!.Color));      // navy
        Assert.Equal("other", table[21]!.Name);
        Assert.Equal(22, table.Classes.Select(c => c.Color).Distinct().Count());
    }

    [Theory]
    [InlineData("label\tcode\nx\t1\n", "header")]
    [InlineData("label\tGT_code\ntumor\t1\nstroma\t1\n", "code 1 is given twice")]
    [InlineData("label\tGT_code\ntumor\t300\n", "line 2")]
    [InlineData("label\tGT_code\tcolor\ntumor\t1\tred\n", "#rrggbb")]
    public void Parse_BadTable_NamesTheProblem(string text, string named)
    {
        LabelMaskException error = Assert.Throws<LabelMaskException>(() => LabelTable.Parse(text, "t.tsv"));

        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_ColourColumn_UsesTheTablesColours()
    {
        LabelTable table = LabelTable.Parse("label\tGT_code\tcolor\nbackground\t0\t#102030\nlesion\t7\t#ff8000\n", "t.tsv");

        Assert.Equal(((byte)0x10, (byte)0x20, (byte)0x30), table[0]!.Color);
        Assert.Equal(((byte)255, (byte)128, (byte)0), table[7]!.Color);
        Assert.False(table.Contains(1));
    }

    [Fact]
    public void Histogram_KnownMask_CountsEveryCode()
    {
        LabelMask mask = Halves(1003, 517, split: 300, band: 17);

        long[] counts = ClassStatistics.Histogram(mask.Codes);

        Assert.Equal(1003L * 17, counts[0]);
        Assert.Equal(300L * 500, counts[1]);
        Assert.Equal(703L * 500, counts[2]);
        Assert.Equal(0, counts.Skip(3).Sum());
    }

    [Fact]
    public void ToCsv_TwoMasks_RowsAndTotalWithFractions()
    {
        LabelTable table = LabelTable.Parse("label\tGT_code\nout\t0\ntumor\t1\nstroma\t2\n", "t.tsv");
        ClassCounts a = ClassStatistics.Of("a", Halves(10, 10, split: 5, band: 0), table);
        ClassCounts empty = ClassStatistics.Of("empty", new LabelMask(4, 5, new byte[20]), table);

        string[] csv = ClassStatistics.ToCsv([a, empty], table).TrimEnd('\n').Split('\n');

        Assert.Equal("id,pixels,out_pixels,tumor_pixels,stroma_pixels,out_fraction,tumor_fraction,stroma_fraction", csv[0]);
        Assert.Equal("a,100,0,50,50,0,0.5,0.5", csv[1]);
        Assert.Equal("empty,20,20,0,0,1,0,0", csv[2]);
        Assert.Equal("total,120,20,50,50,0.166667,0.416667,0.416667", csv[3]);
    }

    [Theory]
    [InlineData(1000, 256, 128, new[] { 0, 128, 256, 384, 512, 640, 744 })] // not a multiple of the stride: the last aligned to the border
    [InlineData(512, 256, 128, new[] { 0, 128, 256 })]                       // exact: no extra
    [InlineData(256, 256, 128, new[] { 0 })]
    [InlineData(255, 256, 128, new int[0])]
    public void Positions_Extent_CoversTheBorder(int extent, int size, int stride, int[] expected)
    {
        Assert.Equal(expected, PatchCutter.Positions(extent, size, stride));
    }

    [Fact]
    public void Cut_MaskNotMultipleOfStride_AlignedPatchesWithTheirCountsAndTheTopBandSkipped()
    {
        LabelMask mask = Halves(600, 400, split: 300, band: 200);
        var image = new Raster(600, 400, 3, [.. Enumerable.Range(0, 600 * 400 * 3).Select(i => (byte)(i * 7))]);
        var options = new PatchCutOptions { Size = 256, Stride = 128, MinValidFraction = 0.5 };

        IReadOnlyList<MaskPatch> patches = PatchCutter.Cut("roi", image, mask, _folder, options);

        // x: 0, 128, 256, 344; y: 0, 128, 144. Rows at y=0 are 200/256 outside_roi (valid 0.22 < 0.5): skipped.
        Assert.Equal(new[] { (0, 128), (128, 128), (256, 128), (344, 128), (0, 144), (128, 144), (256, 144), (344, 144) }, patches.Select(p => (p.X, p.Y)));
        MaskPatch first = patches[0];
        Assert.Equal("roi_0_128.png", first.Name);
        Assert.Equal(256L * 72, first.Counts[0]);               // rows 128..199 are outside_roi
        Assert.Equal(256L * 184, first.Counts[1]);              // the rest is tumor (x < 300)
        Raster maskPng = ImageCodec.Decode(File.ReadAllBytes(Path.Combine(_folder, "masks", first.Name)));
        Raster imagePng = ImageCodec.Decode(File.ReadAllBytes(Path.Combine(_folder, "images", first.Name)));
        Assert.Equal(mask.Codes.AsSpan((128 * 600) + 0, 256).ToArray(), maskPng.Pixels.AsSpan(0, 256).ToArray());
        Assert.Equal(image.Crop(0, 128, 256, 256).Pixels, imagePng.Pixels);
        string[] index = PatchCutter.IndexCsv(patches, LabelTable.Parse("label\tGT_code\nout\t0\ntumor\t1\nstroma\t2\n", "t.tsv")).TrimEnd('\n').Split('\n');
        Assert.Equal("name,x,y,size,valid_fraction,out_pixels,tumor_pixels,stroma_pixels", index[0]);
        Assert.Equal($"roi_0_128.png,0,128,256,0.71875,{256 * 72},{256 * 184},0", index[1]);
    }

    [Fact]
    public void Cut_EmptyMask_NoPatches()
    {
        var mask = new LabelMask(300, 300, new byte[300 * 300]);

        IReadOnlyList<MaskPatch> patches = PatchCutter.Cut("empty", new Raster(300, 300, 3, new byte[300 * 300 * 3]), mask, _folder);

        Assert.Empty(patches);
        Assert.Empty(Directory.GetFiles(Path.Combine(_folder, "masks")));
    }

    [Fact]
    public void Cut_MaskSizeDiffersFromImage_ClearErrorAndNothingWritten()
    {
        LabelMaskException error = Assert.Throws<LabelMaskException>(() =>
            PatchCutter.Cut("roi", new Raster(300, 300, 3, new byte[300 * 300 * 3]), Halves(300, 299, 100, 0), _folder));

        Assert.Contains("300x299", error.Message, StringComparison.Ordinal);
        Assert.Contains("300x300", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_folder, "masks")));
    }

    [Fact]
    public void Load_MaskWithACodeOutsideTheTable_ClearErrorNamingTheCode()
    {
        var codes = new byte[64 * 64];
        codes[100] = 42;
        string path = Path.Combine(_folder, "mask.png");
        File.WriteAllBytes(path, ImageCodec.EncodePng(new Raster(64, 64, 1, codes)));

        LabelMaskException error = Assert.Throws<LabelMaskException>(() => LabelMask.Load(path, Bcss()));

        Assert.Contains("code 42 (1 pixels)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EncodeIndexedPng_BcssMask_PilReadsTheCodesAsIndicesAndTheTableColoursAsPalette()
    {
        LabelTable table = Bcss();
        var codes = new byte[64 * 48];
        for (int i = 0; i < codes.Length; i++)
        {
            codes[i] = (byte)((i / 7) % 22); // every code, in runs
        }

        string path = Path.Combine(_folder, "mask.png");
        File.WriteAllBytes(path, LabelPalette.EncodeIndexedPng(new LabelMask(64, 48, codes), table));

        ProcessResult pil = await ExternalProcess.RunAsync(ExternalProcess.ReferencePython, ["-c",
            "import json,sys; from PIL import Image; im = Image.open(sys.argv[1]); print(json.dumps({'mode': im.mode, 'size': im.size, 'codes': list(im.getdata()), 'palette': im.getpalette()[:66]}))", path]);
        Assert.True(pil.ExitCode == 0, pil.StandardError);
        using var reference = System.Text.Json.JsonDocument.Parse(pil.StandardOutput);
        Assert.Equal("P", reference.RootElement.GetProperty("mode").GetString());
        Assert.Equal(codes.Select(c => (int)c), reference.RootElement.GetProperty("codes").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(table.Classes.OrderBy(c => c.Code).SelectMany(c => new[] { (int)c.Color.R, c.Color.G, c.Color.B }),
            reference.RootElement.GetProperty("palette").EnumerateArray().Select(e => e.GetInt32()));

        // And back: the colours (as any viewer decodes them) map to the same codes.
        Assert.Equal(codes, LabelPalette.Decode(File.ReadAllBytes(path), table, path).Codes);
    }

    [Fact]
    public void Decode_ColourNoClassHas_ClearErrorWithWhere()
    {
        var rgb = new byte[8 * 4 * 3];
        rgb[(5 * 3) + 1] = 7; // pixel x 5, y 0: #000700
        byte[] png = ImageCodec.EncodePng(new Raster(8, 4, 3, rgb));

        LabelMaskException error = Assert.Throws<LabelMaskException>(() => LabelPalette.Decode(png, Bcss(), "colours.png"));

        Assert.Contains("#000700 at x 5, y 0", error.Message, StringComparison.Ordinal);
    }

    /// <summary>A 6x1 RGB mask in the shapes table's colours: tumor (#800000), an anti-aliased tumor edge (#7a0503, 8.4 from it), stroma (#008000) twice, a blend 7.8 from stroma (#068403), and <paramref name="last"/>.</summary>
    private static byte[] BlendedMask((byte R, byte G, byte B) last)
    {
        byte[] rgb = [128, 0, 0, 122, 5, 3, 0, 128, 0, 0, 128, 0, 6, 132, 3, last.R, last.G, last.B];
        return ImageCodec.EncodePng(new Raster(6, 1, 3, rgb));
    }

    [Fact]
    public void DecodeNearest_EdgeColoursWithinTheTolerance_TakeTheNearestClassAndAreCounted()
    {
        PaletteDecoding decoded = LabelPalette.DecodeNearest(BlendedMask((128, 0, 0)), SyntheticShapes.Table(), "edges.png", tolerance: 10);

        Assert.Equal([1, 1, 2, 2, 2, 1], decoded.Mask.Codes);
        Assert.Equal(2, decoded.SnappedPixels);
        Assert.Equal(Math.Sqrt((6 * 6) + (5 * 5) + (3 * 3)), decoded.LargestDistance, 9);
    }

    [Fact]
    public void DecodeNearest_ColourBeyondTheTolerance_RefusedWithTheDistanceAndTheOption()
    {
        // #ff00ff: 285 from tumor, the nearest class colour; no blend of class colours.
        LabelMaskException beyond = Assert.Throws<LabelMaskException>(() => LabelPalette.DecodeNearest(BlendedMask((255, 0, 255)), SyntheticShapes.Table(), "edges.png", tolerance: 10));
        LabelMaskException exact = Assert.Throws<LabelMaskException>(() => LabelPalette.DecodeNearest(BlendedMask((128, 0, 0)), SyntheticShapes.Table(), "edges.png", tolerance: 0));

        Assert.Contains("#ff00ff at x 5, y 0", beyond.Message, StringComparison.Ordinal);
        Assert.Contains("is 284.9 from the nearest class colour (tumor)", beyond.Message, StringComparison.Ordinal);
        Assert.Contains("beyond the tolerance 10", beyond.Message, StringComparison.Ordinal);
        Assert.Contains("#7a0503 at x 1, y 0 is no class's", exact.Message, StringComparison.Ordinal);
        Assert.Contains("nearest: tumor, RGB distance 8.4", exact.Message, StringComparison.Ordinal);
        Assert.Contains("--tolerance", exact.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decode_RgbMask_PointsToThePaletteTool()
    {
        byte[] png = ImageCodec.EncodePng(new Raster(4, 4, 3, new byte[4 * 4 * 3]));

        LabelMaskException error = Assert.Throws<LabelMaskException>(() => LabelMask.Decode(png, Bcss(), "colour.png"));

        Assert.Contains("has 3 bands", error.Message, StringComparison.Ordinal);
        Assert.Contains("dataset palette --to-codes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ByFraction_RareClasses_MovedToOtherAndTheMaskRewritten()
    {
        LabelTable table = LabelTable.Parse("label\tGT_code\nout\t0\ntumor\t1\nstroma\t2\nrare\t3\nother\t4\n", "t.tsv");
        var codes = new byte[1000];
        for (int i = 0; i < codes.Length; i++)
        {
            codes[i] = i < 500 ? (byte)0 : i < 800 ? (byte)1 : i < 995 ? (byte)2 : (byte)3; // rare: 5 of 500 annotated = 1 %
        }

        var mask = new LabelMask(100, 10, codes);
        ClassMerge merge = ClassMerge.ByFraction(ClassStatistics.Of("m", mask, table), table, minFraction: 0.02);
        LabelMask merged = merge.Apply(mask);

        Assert.Equal(new Dictionary<byte, byte> { [3] = 4 }, merge.Moves);
        long[] counts = ClassStatistics.Histogram(merged.Codes);
        Assert.Equal((500L, 300L, 195L, 0L, 5L), (counts[0], counts[1], counts[2], counts[3], counts[4]));
    }

    [Fact]
    public void FromMap_NamesAndCodes_MovesAndUnknownClassIsAClearError()
    {
        LabelTable table = Bcss();

        ClassMerge merge = ClassMerge.FromMap("dcis=tumor, 19=other", table);

        Assert.Equal(new Dictionary<byte, byte> { [20] = 1, [19] = 21 }, merge.Moves);
        Assert.Contains("'nope'", Assert.Throws<LabelMaskException>(() => ClassMerge.FromMap("nope=tumor", table)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_SingleBandPng_CodesKeptExactly()
    {
        LabelMask mask = Halves(70, 50, split: 20, band: 10);
        string path = Path.Combine(_folder, "halves.png");
        File.WriteAllBytes(path, ImageCodec.EncodePng(new Raster(70, 50, 1, mask.Codes)));

        Assert.Equal(mask.Codes, LabelMask.Load(path, Bcss()).Codes);
    }
}
