using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Engine.Training;

namespace SlidePlugin.Engine.Tests.Datasets;

/// <summary>Class-per-folder image sets (torchvision's ImageFolder, as Kather's NCT-CRC-HE ships): <c>&lt;root&gt;/&lt;class&gt;/*.png</c>.</summary>
public sealed class FolderDatasetTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("slideplugin-folders").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>
    /// A 96x96 tile of class <paramref name="label"/>: noisy tissue-like pink, with the class's mark in some patches
    /// (0: purple nuclei dots, 1: pale stripes, 2: dark red blocks), so bags differ by what a few of their patches hold.
    /// </summary>
    private static Raster Tile(int label, int seed, int whitePatches = 0)
    {
        var random = new TensorRandom((ulong)((label * 1000) + seed + 1));
        var pixels = new byte[96 * 96 * 3];
        for (int y = 0; y < 96; y++)
        {
            for (int x = 0; x < 96; x++)
            {
                int patch = ((y / 32) * 3) + (x / 32);
                bool marked = patch % 2 == seed % 2;
                (int r, int g, int b) = (200, 140, 180);
                if (patch < whitePatches)
                {
                    (r, g, b) = (250, 250, 250);
                }
                else if (marked && label == 0 && (x % 8 < 4) && (y % 8 < 4))
                {
                    (r, g, b) = (90, 40, 140);
                }
                else if (marked && label == 1 && y % 6 < 3)
                {
                    (r, g, b) = (235, 215, 225);
                }
                else if (marked && label == 2 && (x / 4 + y / 4) % 2 == 0)
                {
                    (r, g, b) = (150, 30, 60);
                }

                int noise = random.NextInt(21) - 10;
                int i = ((y * 96) + x) * 3;
                pixels[i] = (byte)Math.Clamp(r + noise, 0, 255);
                pixels[i + 1] = (byte)Math.Clamp(g + noise, 0, 255);
                pixels[i + 2] = (byte)Math.Clamp(b + noise, 0, 255);
            }
        }

        return new Raster(96, 96, 3, pixels);
    }

    private static readonly string[] ClassNames = ["tumour", "lymphocytes", "stroma"];   // listed out of order: classes sort by name

    private string MakeFolders(int perClass, string? under = null)
    {
        string root = under is null ? _root : Path.Combine(_root, under);
        for (int c = 0; c < ClassNames.Length; c++)
        {
            string folder = Path.Combine(root, ClassNames[c]);
            Directory.CreateDirectory(folder);
            for (int i = 0; i < perClass; i++)
            {
                // Formats mixed as downloaded sets are; a sub-folder is part of its class.
                string path = i % 3 == 2 ? Path.Combine(folder, "more", $"t{i}.PNG") : Path.Combine(folder, $"t{i}.{(i % 2 == 0 ? "png" : "jpg")}");
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                Raster tile = Tile(Array.IndexOf(SortedNames, ClassNames[c]), i);
                File.WriteAllBytes(path, path.EndsWith(".jpg", StringComparison.Ordinal) ? ImageCodec.EncodeJpeg(tile, 95) : ImageCodec.EncodePng(tile));
            }

            File.WriteAllText(Path.Combine(folder, "notes.txt"), "not an image");
        }

        return root;
    }

    private static readonly string[] SortedNames = [.. ClassNames.Order(StringComparer.Ordinal)];

    [Fact]
    public void Folders_ClassPerFolder_ClassesFromNamesAndOneBagPerImage()
    {
        string root = MakeFolders(perClass: 4);

        ImageFolderBags bags = ImageFolderBags.Folders(root);

        Assert.Equal(["lymphocytes", "stroma", "tumour"], bags.Classes);
        Assert.Equal(12, bags.Items.Count);
        for (int i = 0; i < bags.Items.Count; i++)
        {
            string classFolder = Path.GetRelativePath(root, bags.PathOf(i)).Split(Path.DirectorySeparatorChar)[0];
            Assert.Equal(bags.Classes[bags.Items[i].Label], classFolder);
            Assert.Null(bags.Items[i].Split);
            Assert.Equal(9, bags.LoadPatches(i).Count);   // 96² cut into 32² patches, none white
        }

        Assert.Contains(root, bags.Description, StringComparison.Ordinal);
        Assert.Contains("lymphocytes 4, stroma 4, tumour 4", bags.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Folders_TrainValTestLevel_FixesEachImagesSplit()
    {
        MakeFolders(perClass: 3, under: "train");
        MakeFolders(perClass: 2, under: "test");

        ImageFolderBags bags = ImageFolderBags.Folders(_root);

        Assert.Equal(["lymphocytes", "stroma", "tumour"], bags.Classes);
        Assert.Equal(9, bags.Items.Count(i => i.Split == "train"));
        Assert.Equal(6, bags.Items.Count(i => i.Split == "test"));
        DataSplit split = DataSplit.Create(bags.Items, validationFraction: 0.2, testFraction: 0.2, seed: 1);
        Assert.All(split.Test, i => Assert.Equal("test", bags.Items[i].Split));
    }

    [Fact]
    public void Folders_OneClassOrAnEmptyClass_RefusedNamingWhatWasFound()
    {
        string single = Path.Combine(_root, "single", "tumour");
        Directory.CreateDirectory(single);
        File.WriteAllBytes(Path.Combine(single, "a.png"), ImageCodec.EncodePng(Tile(0, 0)));
        var one = Assert.Throws<DatasetException>(() => ImageFolderBags.Folders(Path.GetDirectoryName(single)!));
        Assert.Contains("one class folder (tumour)", one.Message, StringComparison.Ordinal);

        Directory.CreateDirectory(Path.Combine(_root, "single", "empty"));
        var empty = Assert.Throws<DatasetException>(() => ImageFolderBags.Folders(Path.GetDirectoryName(single)!));
        Assert.Contains("'empty'", empty.Message, StringComparison.Ordinal);
        Assert.Contains("no .png/.jpg/.jpeg/.tif/.tiff image", empty.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0.75, 6)]   // the three white patches dropped
    [InlineData(1.0, 9)]    // every patch kept
    public void Folders_MaxWhite_DropsPatchesAtLeastThatWhite(double maxWhite, int patches)
    {
        foreach (string name in new[] { "a", "b" })
        {
            Directory.CreateDirectory(Path.Combine(_root, name));
            File.WriteAllBytes(Path.Combine(_root, name, "x.png"), ImageCodec.EncodePng(Tile(0, 0, whitePatches: 3)));
        }

        ImageFolderBags bags = ImageFolderBags.Folders(_root, maxWhite: maxWhite);

        Assert.Equal(patches, bags.LoadPatches(0).Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageFolderBags.Folders(_root, maxWhite: 0));
    }

    [Fact]
    public void Folders_UnreadableImage_ErrorNamesTheSkipOption()
    {
        string root = MakeFolders(perClass: 2);
        File.WriteAllBytes(Path.Combine(root, "stroma", "broken.png"), [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);

        var error = Assert.Throws<DatasetException>(() => ImageFolderBags.Folders(root));

        Assert.Contains("broken.png", error.Message, StringComparison.Ordinal);
        Assert.Contains("--skip-unreadable", error.Message, StringComparison.Ordinal);
        Assert.Equal(6, ImageFolderBags.Folders(root, UnreadableFilePolicy.Skip).Items.Count);
    }

    [Fact]
    public void Train_ThreeClassFolders_MulticlassHeadLearnsThemAndTheCardNamesTheData()
    {
        string root = MakeFolders(perClass: 10);
        ImageFolderBags bags = ImageFolderBags.Folders(root);
        string output = Path.Combine(_root, "run");

        TrainingResult result = new MilTrainer(bags, new TrainingOptions { Epochs = 12, Seed = 3, ValidationFraction = 0.15, TestFraction = 0.3 }, output).Run();

        // Stratified: every class in validation (AUC defined every epoch) and in test.
        Assert.Equal(3, result.Split.Validation.Select(i => bags.Items[i].Label).Distinct().Count());
        Assert.Equal(3, result.Split.Test.Select(i => bags.Items[i].Label).Distinct().Count());
        Assert.All(result.History, e => Assert.True(double.IsFinite(e.Validation.Auc), $"epoch {e.Epoch}: validation AUC {e.Validation.Auc}"));
        Assert.NotNull(result.Test);
        Assert.True(result.Test!.Auc >= 0.9, $"test macro AUC {result.Test.Auc:0.###}, accuracy {result.Test.Accuracy:0.###}");
        (_, ModelCard card) = ModelCheckpoint.Load(result.BestModelPath!);
        Assert.Equal(MilHead.Multiclass, card.Spec.Head);
        Assert.Equal(3, card.Spec.ClassCount);
        Assert.Equal(["lymphocytes", "stroma", "tumour"], card.Classes);
        Assert.StartsWith($"image folders under {root} (lymphocytes 10, stroma 10, tumour 10 images)", card.TrainingData, StringComparison.Ordinal);
    }
}
