using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Engine.Tissue;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Datasets;

public sealed class DatasetTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-datasets").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void MnistIdx_Load_ReadsBothSplitsWithKnownFirstLabels()
    {
        MnistIdx train = MnistIdx.Load(TestData.Path("mnist"), train: true);
        MnistIdx test = MnistIdx.Load(TestData.Path("mnist"), train: false);

        Assert.Equal((60000, 28, 28), (train.Count, train.Rows, train.Columns));
        Assert.Equal(10000, test.Count);
        // The well-known first digits of MNIST: a 5 in training, a 7 in test.
        Assert.Equal(5, train.Labels[0]);
        Assert.Equal(7, test.Labels[0]);
        Assert.Equal(60000 * 784, train.Images.Length);
    }

    [Fact]
    public void MnistIdx_TruncatedFile_ThrowsNamingIt()
    {
        // The first 5000 bytes of the 10,008-byte label file, uncompressed: a header that promises more than follows.
        using (var gzip = new System.IO.Compression.GZipStream(File.OpenRead(TestData.Path("mnist", "t10k-labels-idx1-ubyte.gz")), System.IO.Compression.CompressionMode.Decompress))
        using (var output = File.Create(Path.Combine(_folder, "t10k-labels-idx1-ubyte")))
        {
            byte[] buffer = new byte[5000];
            gzip.ReadExactly(buffer);
            output.Write(buffer);
        }

        File.Copy(TestData.Path("mnist", "t10k-images-idx3-ubyte.gz"), Path.Combine(_folder, "t10k-images-idx3-ubyte.gz"));
        var error = Assert.Throws<DatasetException>(() => MnistIdx.Load(_folder, train: false));
        Assert.Contains("t10k-labels-idx1-ubyte", error.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MnistBags_Build_LabelsSayWhetherTheTargetDigitIsInTheBag()
    {
        var bags = new MnistBags(TestData.Path("mnist"), new MnistBagsOptions { TrainBags = 300, TestBags = 100, Seed = 7 });

        Assert.Equal(400, bags.Items.Count);
        Assert.Equal(300, bags.Items.Count(i => i.Split == "train"));
        for (int i = 0; i < bags.Items.Count; i++)
        {
            Assert.Equal(bags.InstanceLabels(i).Contains(9) ? 1 : 0, bags.Items[i].Label);
        }

        double meanLength = Enumerable.Range(0, bags.Items.Count).Average(i => bags.Indices(i).Count);
        Assert.InRange(meanLength, 9.5, 10.5);  // N(10, 2) truncated toward zero: mean ≈ 9.5-10
        using Tensor first = bags.Load(0);
        Assert.Equal([bags.Indices(0).Count, 1, 28, 28], first.Shape);
        // Normalised as Ilse et al.: (x/255 − 0.1307) / 0.3081, so background pixels are −0.4242.
        Assert.Equal(-0.1307f / 0.3081f, first.Data.ToArray().Min(), 4);
    }

    [Fact]
    public void MnistBags_SameSeed_SameBags_OtherSeed_OtherBags()
    {
        var options = new MnistBagsOptions { TrainBags = 20, TestBags = 0, Seed = 3 };
        var a = new MnistBags(TestData.Path("mnist"), options);
        var b = new MnistBags(TestData.Path("mnist"), options);
        var c = new MnistBags(TestData.Path("mnist"), options with { Seed = 4 });

        Assert.Equal(a.Indices(5), b.Indices(5));
        Assert.NotEqual(a.Indices(5), c.Indices(5));
    }

    [Fact]
    public void Ucsb_RealImages_58BagsLabelledByNameWithWhitePatchesDropped()
    {
        ImageFolderBags bags = ImageFolderBags.Ucsb(TestData.Path("ucsb-breast"));

        Assert.Equal(58, bags.Items.Count);
        Assert.Equal(26, bags.Items.Count(i => i.Label == 1));
        Assert.All(bags.Items, i => Assert.Equal(i.Id.Contains("malignant", StringComparison.Ordinal) ? 1 : 0, i.Label));
        int[] counts = [.. Enumerable.Range(0, bags.Items.Count).Select(i => bags.LoadPatches(i).Count)];
        Assert.All(counts, c => Assert.InRange(c, 1, 672));      // 896/32 x 768/32 = 28 x 24 at most
        Assert.Contains(counts, c => c < 672);                     // some images have white background
        using Tensor bag = bags.Load(0);
        Assert.Equal([counts[0], 3, 32, 32], bag.Shape);
        Assert.InRange(bag.Data.ToArray().Max(), 0.5f, 1f);       // ToTensor scaling: [0, 1]
    }

    [Fact]
    public void ImagePatches_WhiteFilter_DropsPatchesAtOrAboveTheFraction()
    {
        // 96x32, three patches: all white, all dark, and exactly 75% white (24 of 32 rows).
        byte[] pixels = new byte[96 * 32 * 3];
        for (int y = 0; y < 32; y++)
        {
            for (int x = 0; x < 96; x++)
            {
                bool white = x < 32 || (x >= 64 && y < 24);
                pixels.AsSpan(((y * 96) + x) * 3, 3).Fill(white ? (byte)230 : (byte)90);
            }
        }

        PatchBag bag = ImagePatches.FromRaster(new Raster(96, 32, 3, pixels), new ImagePatchOptions { PatchSize = 32, MaxWhiteFraction = 0.75 });

        Assert.Equal(1, bag.Count);                   // only the dark patch: the 75%-white one goes too
        Assert.Equal(90, bag.Pixels[0]);
    }

    [Fact]
    public void PatchBag_ToTensor_PlanarChannelsNormalisedPerChannel()
    {
        // Two 2x2 RGB patches, interleaved; torchvision's ToTensor() then Normalize(mean, std) per channel.
        byte[] pixels = [.. Enumerable.Range(0, 24).Select(i => (byte)(i * 10))];
        var bag = new PatchBag(pixels, 2, 2, 3);
        float[] mean = [0.5f, 0.25f, 0f], std = [0.5f, 2f, 1f];

        using Tensor t = bag.ToTensor(new PatchNormalization(mean, std));

        Assert.Equal([2, 3, 2, 2], t.Shape);
        float[] values = t.ToArray();
        for (int n = 0; n < 2; n++)
        {
            for (int channel = 0; channel < 3; channel++)
            {
                for (int pixel = 0; pixel < 4; pixel++)
                {
                    byte v = pixels[(((n * 4) + pixel) * 3) + channel];
                    float expected = (v * (1f / (255f * std[channel]))) + (-mean[channel] / std[channel]);
                    Assert.Equal(expected, values[(((n * 3) + channel) * 4) + pixel]);
                }
            }
        }
    }

    [Fact]
    public void PatchBag_Augment_ProducesTheEightSymmetriesOfAPatch()
    {
        byte[] pixels = [.. Enumerable.Range(0, 9).Select(i => (byte)i)];   // 3x3 grey patch, no symmetry
        var bag = new PatchBag(pixels, 1, 3, 1);
        var seen = new HashSet<string>();
        var random = new TensorRandom(1);
        for (int i = 0; i < 200; i++)
        {
            using Tensor t = bag.ToTensor(new PatchNormalization([0f], [1f / 255f]), random);
            float[] values = t.ToArray();
            Assert.Equal(Enumerable.Range(0, 9).Select(v => (float)v).Order(), values.Order());   // a permutation of the pixels
            Assert.Equal(4f, values[4]);                                                          // the centre stays
            seen.Add(string.Join(',', values));
        }

        Assert.Equal(8, seen.Count);
    }

    [Fact]
    public void BreakHisLayout_FlatFolder_SplitsByPatientAndLabelsFromNames()
    {
        string target = Path.Combine(_folder, "layout");
        BreakHisConversion result = BreakHisLayout.Convert(TestData.Path("breakhis"), target, testFraction: 0.3, seed: 1);

        Assert.Equal(12, result.Copied);
        var files = Directory.GetFiles(target, "*.png", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(target, f)).ToList();
        Assert.Equal(12, files.Count);
        foreach (string file in files)
        {
            string[] parts = file.Split(Path.DirectorySeparatorChar);
            Assert.Equal(ImageFolderBags.BreakHisPartsOf(parts[3])!.Value.Magnification, parts[0]);
            Assert.Equal(ImageFolderBags.BreakHisLabelOf(parts[3]).ToString(), parts[2]);
        }

        // No patient on both sides of the split.
        var splitsByPatient = files.GroupBy(f => ImageFolderBags.BreakHisPartsOf(Path.GetFileName(f))!.Value.Patient)
            .Select(g => g.Select(f => f.Split(Path.DirectorySeparatorChar)[1]).Distinct().Count());
        Assert.All(splitsByPatient, count => Assert.Equal(1, count));

        BreakHisConversion again = BreakHisLayout.Convert(TestData.Path("breakhis"), target, testFraction: 0.3, seed: 1);
        Assert.Equal((0, 12), (again.Copied, again.AlreadyThere));
    }

    [Fact]
    public void BreakHis_Layout_BagsAre400PatchesOf28()
    {
        string target = Path.Combine(_folder, "layout");
        BreakHisLayout.Convert(TestData.Path("breakhis"), target);

        ImageFolderBags bags = ImageFolderBags.BreakHis(target, "40X");

        Assert.Equal(Directory.GetFiles(TestData.Path("breakhis"), "*-40-*.png").Length, bags.Items.Count);
        Assert.All(bags.Items, i => Assert.Contains(i.Split, new[] { "train", "test" }));
        using Tensor bag = bags.Load(0);
        Assert.Equal([400, 3, 28, 28], bag.Shape);
    }

    [Fact]
    public void ImageFolder_CorruptImage_FailsWithItsPathOrIsSkippedAndReported()
    {
        string folder = Path.Combine(_folder, "ucsb");
        Directory.CreateDirectory(folder);
        foreach (string name in new[] { "ytma10_010704_benign1_ccd.tif", "ytma10_010704_malignant1_ccd.tif" })
        {
            File.Copy(TestData.Path("ucsb-breast", name), Path.Combine(folder, name));
        }

        string corrupt = Path.Combine(folder, "broken_benign9_ccd.tif");
        File.WriteAllBytes(corrupt, [.. File.ReadAllBytes(TestData.Path("ucsb-breast", "ytma10_010704_benign2_ccd.tif")).Take(300)]);

        var error = Assert.Throws<DatasetException>(() => ImageFolderBags.Ucsb(folder));
        Assert.Contains(corrupt, error.Message, StringComparison.Ordinal);

        ImageFolderBags skipping = ImageFolderBags.Ucsb(folder, UnreadableFilePolicy.Skip);
        Assert.Equal(2, skipping.Items.Count);
        SkippedFile skipped = Assert.Single(skipping.Skipped);
        Assert.Equal(corrupt, skipped.Path);
    }

    [Fact]
    public void SlideBagsReadRows_QuotedPathWithCommaAndQuote_OneCellAsWritten()
    {
        // CohortRun and the cohort table quote such paths (CsvFields.Quote); the slide list reads them back the same way.
        string csv = Path.Combine(_folder, "quoted.csv");
        File.WriteAllText(csv, $"slide,label,patient\n{CsvFields.Quote("case 1, left \"A\".svs")},tumour,\"p, 7\"\nplain.svs,normal,p8\n");

        var rows = SlideBags.ReadRows(csv, _folder, resolveSlide: null);

        Assert.Equal([(Path.Combine(_folder, "case 1, left \"A\".svs"), "tumour", (string?)null, (string?)"p, 7"), (Path.Combine(_folder, "plain.svs"), "normal", null, "p8")], rows);
    }

    [Fact]
    public void SlideBags_CsvOfRealSlide_BagIsItsTissueTiles()
    {
        string csv = Path.Combine(_folder, "slides.csv");
        File.WriteAllText(csv, $"slide,label,split\n{TestData.Path("slides", "CMU-1-Small-Region.svs")},tumour,train\n{TestData.Path("slides", "broken.svs")},normal,test\n");

        Assert.Throws<DatasetException>(() => new SlideBags(csv, mpp: 4.0, patchSize: 32));
        var bags = new SlideBags(csv, mpp: 4.0, patchSize: 32, policy: UnreadableFilePolicy.Skip);

        BagItem item = Assert.Single(bags.Items);
        Assert.Equal(["normal", "tumour"], bags.Classes);
        Assert.Equal((1, "train"), (item.Label, item.Split));
        PatchBag patches = bags.LoadPatches(0);
        // 2220x2967 at 0.499 µm/px is ~277x370 px at 4 µm/px: at most 8 x 11 tiles of 32.
        Assert.InRange(patches.Count, 10, 88);
        Assert.Contains("broken.svs", Assert.Single(bags.Skipped).Path, StringComparison.Ordinal);

        // Tile by tile, in grid order, the pixels a tile read alone gives (what analysis and StreamTiles serve).
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        (TileGrid grid, _) = TileGrid.OverTissue(slide, slide.RequireMpp(), new TileGridOptions { TileSize = 32, TargetMpp = 4.0, MinTissueFraction = 0.5 });
        Assert.Equal(grid.Tiles.Count, patches.Count);
        for (int i = 0; i < grid.Tiles.Count; i++)
        {
            Assert.True(grid.Read(slide, grid.Tiles[i]).Pixels.AsSpan().SequenceEqual(patches.Pixels.AsSpan(i * 32 * 32 * 3, 32 * 32 * 3)), $"tile {i}");
        }
    }
}
