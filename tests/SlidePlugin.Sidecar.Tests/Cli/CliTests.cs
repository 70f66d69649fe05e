using System.Text.Json;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Sidecar.Cli;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Cli;

public class CliTests
{
    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int exitCode = await SlidePluginCli.RunAsync(args, output, error);
        return (exitCode, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Help_Root_ListsEveryVerb()
    {
        (int exitCode, string output, _) = await RunAsync("--help");

        Assert.Equal(0, exitCode);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
        foreach (string verb in new[] { "serve", "analyze", "train", "tiles" })
        {
            Assert.Contains(verb, output, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("serve", "HTTP/2")]
    [InlineData("serve", "--model-root")]
    [InlineData("analyze", "--mpp")]
    [InlineData("analyze", "--model")]
    [InlineData("analyze", "--server")]
    [InlineData("train", "--dataset")]
    [InlineData("train", "attention")]
    [InlineData("tiles", "--target-mpp")]
    [InlineData("tiles", "--min-tissue")]
    public async Task Help_Verb_PrintsUsageWithItsOptions(string verb, string expected)
    {
        (int exitCode, string output, _) = await RunAsync(verb, "--help");

        Assert.Equal(0, exitCode);
        // In-process the root's name is the test host's, so match the verb in the usage line.
        Assert.Matches($@"Usage:\s+\S+ {verb}\b", output);
        Assert.Contains(expected, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Train_TinyMnistBagsRun_WritesCheckpointsAndOneLinePerEpoch()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-cli-train").FullName;
        try
        {
            (int exitCode, string output, string error) = await RunAsync("train", "--dataset", "mnist-bags", "--data", TestData.Path("mnist"),
                "--model", "attention", "--train-bags", "20", "--test-bags", "10", "--epochs", "2", "--out", folder);

            Assert.True(exitCode == ExitCodes.Success, error);
            Assert.Contains("epoch=1 ", output, StringComparison.Ordinal);
            Assert.Contains("epoch=2 ", output, StringComparison.Ordinal);
            Assert.Contains("Test (10 bags", output, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(folder, "model-best.safetensors")));
            Assert.True(File.Exists(Path.Combine(folder, "model-best.json")));

            // Running again into the same folder without --resume would overwrite a run: refused, named.
            (exitCode, _, error) = await RunAsync("train", "--dataset", "mnist-bags", "--data", TestData.Path("mnist"),
                "--train-bags", "20", "--test-bags", "10", "--epochs", "2", "--out", folder);
            Assert.Equal(ExitCodes.Failure, exitCode);
            Assert.Contains("resume", error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Train_MissingDataFolder_ExitsWithFailureNamingIt()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"no-such-ucsb-{Guid.NewGuid():N}");

        (int exitCode, _, string error) = await RunAsync("train", "--dataset", "ucsb", "--data", missing, "--out", Path.GetTempPath());

        Assert.Equal(ExitCodes.Failure, exitCode);
        Assert.Contains(missing, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Train_FoldersDataset_MulticlassModelWhoseCardNamesTheFoldersAndClasses()
    {
        string root = Directory.CreateTempSubdirectory("slideplugin-cli-folders").FullName;
        try
        {
            (string Name, byte R, byte G, byte B)[] classes = [("adipose", 240, 230, 230), ("debris", 120, 60, 40), ("mucus", 180, 160, 220)];
            foreach ((string name, byte r, byte g, byte b) in classes)
            {
                Directory.CreateDirectory(Path.Combine(root, "data", name));
                for (int i = 0; i < 4; i++)
                {
                    byte[] pixels = [.. Enumerable.Range(0, 64 * 64).SelectMany(p => new[] { r, g, (byte)(b - (p % 7)) })];
                    await File.WriteAllBytesAsync(Path.Combine(root, "data", name, $"{i}.png"), ImageCodec.EncodePng(new Raster(64, 64, 3, pixels)));
                }
            }

            string data = Path.Combine(root, "data"), output = Path.Combine(root, "run");
            (int exitCode, _, string error) = await RunAsync("train", "--dataset", "folders", "--data", data, "--max-white", "1", "--epochs", "2", "--out", output);

            Assert.True(exitCode == ExitCodes.Success, error);
            using JsonDocument card = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, "model-best.json")));
            Assert.Equal(["adipose", "debris", "mucus"], card.RootElement.GetProperty("classes").EnumerateArray().Select(c => c.GetString()));
            Assert.StartsWith($"image folders under {data} (adipose 4, debris 4, mucus 4 images)", card.RootElement.GetProperty("training_data").GetString(), StringComparison.Ordinal);

            // Adipose tiles are mostly white: the default 0.75 drops all their patches, and the error says which option keeps them.
            (int whiteExit, _, string whiteError) = await RunAsync("train", "--dataset", "folders", "--data", data, "--epochs", "1", "--out", Path.Combine(root, "white"));
            Assert.Equal(ExitCodes.Failure, whiteExit);
            Assert.Contains("no patch left after dropping white ones", whiteError, StringComparison.Ordinal);
            Assert.Contains("--max-white", whiteError, StringComparison.Ordinal);
            Assert.Contains("--skip-unreadable", whiteError, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task Parse_MissingRequiredOption_ExitsWithUsageCode()
    {
        (int exitCode, _, string error) = await RunAsync("train", "--dataset", "mnist-bags");

        Assert.Equal(ExitCodes.Usage, exitCode);
        Assert.Contains("--data", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Analyze_SlideWithoutMpp_StopsAndNamesTheMppOption()
    {
        (int exitCode, _, string error) = await RunAsync("analyze", TestData.Path("slides", "boxes.tiff"));

        Assert.Equal(ExitCodes.Failure, exitCode);
        Assert.Contains("--mpp", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Analyze_UnopenableSlide_FailsWithOpenSlidesReason()
    {
        (int exitCode, _, string error) = await RunAsync("analyze", TestData.Path("slides", "unopenable.tiff"));

        Assert.Equal(ExitCodes.Failure, exitCode);
        Assert.Contains("Unsupported TIFF compression: 52479", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Analyze_DamagedStore_OneLineNamingTheFile()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-analyze-damaged").FullName;
        try
        {
            string store = Path.Combine(folder, "analyses.sqlite");
            await File.WriteAllBytesAsync(store, [.. Enumerable.Range(0, 8192).Select(i => (byte)(i * 31))]);

            (int exitCode, _, string error) = await RunAsync("analyze", TestData.Path("slides", "CMU-1-Small-Region.svs"), "--out", folder);

            Assert.Equal(ExitCodes.Failure, exitCode);
            Assert.Contains($"The analysis store '{store}' is damaged", error, StringComparison.Ordinal);
            Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("slideplugin:", StringComparison.Ordinal) && !l.StartsWith("slideplugin: warning:", StringComparison.Ordinal));
            Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Analyze_OutputCannotBeWritten_OneLineNamingTheFolderAndNoPartialFile()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-analyze-unwritable").FullName;
        try
        {
            // A folder where the GeoJSON goes: its rename fails as a full disk's write would, after the analysis ran.
            Directory.CreateDirectory(Path.Combine(folder, "CMU-1-Small-Region.geojson"));

            (int exitCode, _, string error) = await RunAsync("analyze", TestData.Path("slides", "CMU-1-Small-Region.svs"), "--out", folder);

            Assert.Equal(ExitCodes.Failure, exitCode);
            Assert.Contains($"cannot write the results into '{folder}'", error, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
            Assert.Empty(Directory.GetFiles(folder, "*.partial*", SearchOption.AllDirectories));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Analyze_CmuWithBundledModel_WritesEveryOutputAndSecondRunIsAnsweredFromTheStore()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-analyze").FullName;
        try
        {
            string slidePath = TestData.Path("slides", "CMU-1-Small-Region.svs");
            (int exitCode, string output, string error) = await RunAsync("analyze", slidePath, "--out", folder);

            Assert.True(exitCode == ExitCodes.Success, error);
            var card = Engine.Checkpoints.ModelCheckpoint.Load(BundledModel.Path).Card;
            using var slide = Engine.Slides.Slide.Open(slidePath);
            int tiles = Engine.Tissue.TileGrid.Build(slide, 0.499, new Engine.Tissue.TileGridOptions { TileSize = card.Spec.PatchSize, TargetMpp = card.Mpp },
                Engine.Tissue.TissueDetector.Detect(slide, 0.499)).Tiles.Count;
            Assert.Contains($"{tiles} tiles in", output, StringComparison.Ordinal);
            foreach (string suffix in new[] { ".geojson", ".tiles.csv", ".heatmap.png", ".attention.png", ".summary.json" })
            {
                Assert.True(File.Exists(Path.Combine(folder, "CMU-1-Small-Region" + suffix)), suffix);
            }

            using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "CMU-1-Small-Region.summary.json")));
            Assert.Contains(summary.RootElement.GetProperty("prediction").GetProperty("class").GetString(), card.Classes);
            Assert.Equal(tiles + 1, File.ReadAllLines(Path.Combine(folder, "CMU-1-Small-Region.tiles.csv")).Length);

            (int again, string secondOutput, _) = await RunAsync("analyze", slidePath, "--out", folder);
            Assert.Equal(ExitCodes.Success, again);
            Assert.Contains("answered from the store", secondOutput, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task FeaturesThenAnalyze_EncoderAndFeatureHead_FeaturesFileAndOutputsOfEveryTile()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-encoder-cli").FullName;
        try
        {
            string encoder = Path.Combine(folder, "small");
            await TestEncoders.ExportSmallAsync(encoder);
            string head = Path.Combine(folder, "head.safetensors");
            TestEncoders.SaveFeatureHead(head, seed: 3);
            string slidePath = TestData.Path("slides", "CMU-1-Small-Region.svs");

            (int featuresExit, string featuresOutput, string featuresError) = await RunAsync("features", slidePath, "--encoder", encoder + ".onnx", "--out", Path.Combine(folder, "features"));
            (int analyzeExit, string analyzeOutput, string analyzeError) = await RunAsync("analyze", slidePath, "--encoder", encoder + ".onnx", "--model", head, "--out", Path.Combine(folder, "out"));
            (int noEncoder, _, string noEncoderError) = await RunAsync("analyze", slidePath, "--model", head, "--out", Path.Combine(folder, "out2"));
            (int gpu, _, string gpuError) = await RunAsync("features", slidePath, "--encoder", encoder + ".onnx", "--device", "cuda", "--out", Path.Combine(folder, "gpu"));

            Assert.True(featuresExit == ExitCodes.Success, featuresError);
            Assert.True(analyzeExit == ExitCodes.Success, analyzeError);
            int tiles = int.Parse(Engine.Checkpoints.SafeTensors.ReadMetadata(Path.Combine(folder, "features", "CMU-1-Small-Region.features.safetensors"))["tile_count"], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Contains($"{tiles} tiles x 128 features (small-seed0, 96 px at 0.5 µm/px, cpu)", featuresOutput, StringComparison.Ordinal);
            Assert.Contains("with head on small-seed0 features (cpu) (96 px tiles at 0.5 µm/px)", analyzeOutput, StringComparison.Ordinal);
            Assert.Equal(tiles + 1, File.ReadAllLines(Path.Combine(folder, "out", "CMU-1-Small-Region.tiles.csv")).Length);
            Assert.Equal(ExitCodes.Failure, noEncoder);
            Assert.Contains("give the tile encoder it was trained with (--encoder NAME.onnx)", noEncoderError, StringComparison.Ordinal);
            Assert.Equal(ExitCodes.Failure, gpu); // no CUDA build here: one line naming what is missing
            Assert.Contains("--device cuda:0 needs ONNX Runtime's CUDA build", gpuError, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Train_SlidesWithEncoder_HeadOnFeaturesWithItsFeaturesKept()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-train-encoder").FullName;
        try
        {
            string encoder = Path.Combine(folder, "small");
            await TestEncoders.ExportSmallAsync(encoder);
            var rows = new List<string> { "slide,label,split" };
            for (int i = 0; i < 6; i++)
            {
                (string slide, bool tumour, _) = SyntheticSlides.CohortSlide(i);
                rows.Add($"{slide},{(tumour ? "tumour" : "normal")},{(i < 2 ? "val" : "train")}");
            }

            File.WriteAllLines(Path.Combine(folder, "slides.csv"), rows);
            string output = Path.Combine(folder, "run");

            (int exitCode, string stdout, string error) = await RunAsync("train", "--dataset", "slides", "--data", Path.Combine(folder, "slides.csv"), "--encoder", encoder + ".onnx",
                "--epochs", "2", "--test-fraction", "0", "--out", output);

            Assert.True(exitCode == ExitCodes.Success, error + stdout);
            Assert.Contains("small-seed0 features (128-d", stdout, StringComparison.Ordinal);
            Assert.Equal(6, Directory.GetFiles(Path.Combine(output, "features"), "*.features.safetensors").Length);
            var card = Engine.Checkpoints.ModelCheckpoint.Load(Path.Combine(output, "model-best.safetensors")).Card;
            Assert.Equal(Engine.Mil.MilInput.Features, card.Spec.Input);
            Assert.Equal(128, card.Spec.FeatureSize);

            // CLAM-SB on the same features (reused), and CLAM without features refused before any data is read.
            (int clamExit, string clamOutput, string clamError) = await RunAsync("train", "--dataset", "slides", "--data", Path.Combine(folder, "slides.csv"), "--encoder", encoder + ".onnx",
                "--model", "clam-sb", "--k-sample", "4", "--epochs", "2", "--test-fraction", "0", "--out", Path.Combine(folder, "clam"), "--features-dir", Path.Combine(output, "features"));
            (int patchesExit, _, string patchesError) = await RunAsync("train", "--dataset", "ucsb", "--data", folder, "--model", "clam-mb", "--out", Path.Combine(folder, "clam-patches"));

            Assert.True(clamExit == ExitCodes.Success, clamError + clamOutput);
            Assert.Contains("Training CLAM-SB on 6 bags", clamOutput, StringComparison.Ordinal);
            var clamCard = Engine.Checkpoints.ModelCheckpoint.Load(Path.Combine(folder, "clam", "model-best.safetensors")).Card;
            Assert.Equal(("clam-sb", 4, 0.25f), (clamCard.Architecture, clamCard.Spec.InstanceSamples, clamCard.Spec.Dropout));
            Assert.Equal(ExitCodes.Usage, patchesExit);
            Assert.Contains("--model clam-mb trains a head on tile features: give --dataset slides with --encoder NAME.onnx", patchesError, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Analyze_OnARunningSidecar_FetchesTheSameOutputsAsInProcess()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-analyze-remote").FullName;
        var roots = new SlidePlugin.Sidecar.Services.SlideRoots([TestData.Path("slides")]);
        using var service = new SlidePlugin.Sidecar.Services.AnalysisServiceImpl(roots, Path.Combine(folder, "work"), BundledModel.Path);
        await using SlidePlugin.Sidecar.Hosting.SidecarServer server = SlidePlugin.Sidecar.Hosting.SidecarServer.Create(new SlidePlugin.Sidecar.Hosting.ServerSettings { Listen = "127.0.0.1:0" },
            new Serilog.LoggerConfiguration().CreateLogger(), service.BindTo);
        await server.StartAsync();
        try
        {
            (int exitCode, string output, string error) = await RunAsync("analyze", "CMU-1-Small-Region.svs", "--server", server.Addresses.Single(), "--out", Path.Combine(folder, "out"));
            (int localExit, _, _) = await RunAsync("analyze", TestData.Path("slides", "CMU-1-Small-Region.svs"), "--out", Path.Combine(folder, "local"));

            Assert.True(exitCode == ExitCodes.Success, error);
            Assert.Equal(ExitCodes.Success, localExit);
            Assert.Contains("Prediction:", output, StringComparison.Ordinal);
            Assert.Equal(File.ReadAllText(Path.Combine(folder, "local", "CMU-1-Small-Region.tiles.csv")), File.ReadAllText(Path.Combine(folder, "out", "CMU-1-Small-Region.tiles.csv")));
            Assert.Equal(SizeOf(Path.Combine(folder, "local", "CMU-1-Small-Region.heatmap.png")), SizeOf(Path.Combine(folder, "out", "CMU-1-Small-Region.heatmap.png")));
        }
        finally
        {
            await server.StopAsync();
            Directory.Delete(folder, recursive: true);
        }

        static (int Width, int Height) SizeOf(string path)
        {
            Engine.Imaging.Raster image = Engine.Imaging.ImageCodec.Decode(File.ReadAllBytes(path));
            return (image.Width, image.Height);
        }
    }

    [Fact]
    public async Task Serve_ModelRootThatIsNotAFolder_ExitsWithUsageNamingIt()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"slideplugin-no-models-{Guid.NewGuid():N}");

        (int exitCode, _, string error) = await RunAsync("serve", "--listen", "127.0.0.1:0", "--slide-root", TestData.Path("slides"), "--model-root", missing);

        Assert.Equal(ExitCodes.Usage, exitCode);
        Assert.Contains($"--model-root: Model root '{missing}' is not a folder.", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Analyze_TruncatedCheckpointBesideItsCard_FailsNamingTheModel()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-truncated").FullName;
        try
        {
            string weights = Path.Combine(folder, "model.safetensors");
            byte[] bytes = await File.ReadAllBytesAsync(BundledModel.Path);
            await File.WriteAllBytesAsync(weights, bytes[..(bytes.Length / 2)]);
            File.Copy(Path.ChangeExtension(BundledModel.Path, ".json"), Path.ChangeExtension(weights, ".json"));

            (int exitCode, _, string error) = await RunAsync("analyze", TestData.Path("slides", "CMU-1-Small-Region.svs"), "--model", weights, "--out", folder);

            Assert.Equal(ExitCodes.Failure, exitCode);
            Assert.Contains("cannot load model", error, StringComparison.Ordinal);
            Assert.Contains(weights, error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Analyze_ModelFileThatIsNotACheckpoint_FailsNamingTheModel()
    {
        string bogus = Path.Combine(Path.GetTempPath(), $"slideplugin-{Guid.NewGuid():N}.safetensors");
        await File.WriteAllTextAsync(bogus, "not a checkpoint");
        try
        {
            (int exitCode, _, string error) = await RunAsync("analyze", TestData.Path("slides", "CMU-1-Small-Region.svs"), "--model", bogus, "--out", Path.GetTempPath());

            Assert.Equal(ExitCodes.Failure, exitCode);
            Assert.Contains(bogus, error, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(bogus);
        }
    }

    [Fact]
    public async Task Tiles_Cmu_WritesEveryTissueTileIndexAndGeoJsonAtomically()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"slideplugin-tiles-{Guid.NewGuid():N}");
        try
        {
            string slidePath = TestData.Path("slides", "CMU-1-Small-Region.svs");
            (int exitCode, string output, string error) = await RunAsync("tiles", slidePath, "--target-mpp", "0.5", "--out", folder);

            Assert.True(exitCode == ExitCodes.Success, error);
            using var slide = Engine.Slides.Slide.Open(slidePath);
            Engine.Tissue.TileGrid expected = Engine.Tissue.TileGrid.Build(slide, 0.499, new Engine.Tissue.TileGridOptions { TargetMpp = 0.5 },
                Engine.Tissue.TissueDetector.Detect(slide, 0.499));
            string[] rows = File.ReadAllLines(Path.Combine(folder, "tiles.csv"));
            Assert.Equal("file,column,row,minx,miny,width,height,tissue_fraction", rows[0]);
            Assert.Equal(expected.Tiles.Select(t => $"{t.X}_{t.Y}.jpeg"), rows.Skip(1).Select(r => r.Split(',')[0]));
            Assert.Contains($"{expected.Tiles.Count} tiles of 256 px", output, StringComparison.Ordinal);
            Engine.Imaging.Raster tile = Engine.Imaging.ImageCodec.Decode(File.ReadAllBytes(Path.Combine(folder, rows[1].Split(',')[0])));
            Assert.Equal((256, 256, 3), (tile.Width, tile.Height, tile.Bands));
            using var geojson = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "tissue.geojson")));
            Assert.NotEqual(0, geojson.RootElement.GetProperty("features").GetArrayLength());
            Assert.Empty(Directory.GetFiles(folder, ".*partial*"));
            Assert.Equal(expected.Tiles.Count + 2, Directory.GetFiles(folder).Length);
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    [Fact]
    public async Task Tiles_SlideWithoutMpp_StopsAndNamesTheMppOption()
    {
        (int exitCode, _, string error) = await RunAsync("tiles", TestData.Path("slides", "boxes.tiff"), "--target-mpp", "0.5", "--out", Path.GetTempPath());

        Assert.Equal(ExitCodes.Failure, exitCode);
        Assert.Contains("--mpp", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dataset_CutStatsPaletteAndMergeOnGeneratedMasks_IndexCountsAndCodesMatchTheMasks()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-dataset").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(folder, "images"));
            Directory.CreateDirectory(Path.Combine(folder, "masks"));
            var codes = new byte[300 * 260];
            for (int i = 0; i < codes.Length; i++)
            {
                codes[i] = (byte)(i % 300 < 100 ? 1 : 2); // tumor in the left 100 columns, stroma elsewhere
            }

            File.WriteAllBytes(Path.Combine(folder, "masks", "roi.png"), Engine.Imaging.ImageCodec.EncodePng(new Engine.Imaging.Raster(300, 260, 1, codes)));
            File.WriteAllBytes(Path.Combine(folder, "images", "roi.png"), Engine.Imaging.ImageCodec.EncodePng(new Engine.Imaging.Raster(300, 260, 3, new byte[300 * 260 * 3])));
            string table = TestData.Path("bcss", "gtruth_codes.tsv");

            (int cutExit, string cutOutput, string cutError) = await RunAsync("dataset", "cut", "--table", table, "--images", Path.Combine(folder, "images"),
                "--masks", Path.Combine(folder, "masks"), "--out", Path.Combine(folder, "patches"), "--size", "128", "--stride", "128");
            (int statsExit, _, string statsError) = await RunAsync("dataset", "stats", "--table", table, "--masks", Path.Combine(folder, "masks"), "--out", Path.Combine(folder, "stats"));

            Assert.True(cutExit == ExitCodes.Success, cutError);
            Assert.True(statsExit == ExitCodes.Success, statsError);
            Assert.Contains("9 patches of 128 px", cutOutput, StringComparison.Ordinal); // x: 0, 128, 172; y: 0, 128, 132
            string[] index = File.ReadAllLines(Path.Combine(folder, "patches", "index.csv"));
            Assert.Equal(10, index.Length);
            Assert.StartsWith("roi_0_0.png,0,0,128,1,0,12800,3584,", index[1], StringComparison.Ordinal);
            string[] stats = File.ReadAllLines(Path.Combine(folder, "stats", "class-stats.csv"));
            Assert.StartsWith("roi,78000,0,26000,52000,", stats[1], StringComparison.Ordinal);
            Assert.Equal(3, Engine.Imaging.ImageCodec.Decode(File.ReadAllBytes(Path.Combine(folder, "stats", "class-stats.png"))).Bands);

            // Coloured and back: the codes survive.
            (int colourExit, _, string colourError) = await RunAsync("dataset", "palette", "--table", table, "--masks", Path.Combine(folder, "masks"), "--out", Path.Combine(folder, "coloured"));
            (int backExit, _, string backError) = await RunAsync("dataset", "palette", "--to-codes", "--table", table, "--masks", Path.Combine(folder, "coloured"), "--out", Path.Combine(folder, "codes"));
            Assert.True(colourExit == ExitCodes.Success, colourError);
            Assert.True(backExit == ExitCodes.Success, backError);
            Assert.Equal(3, Engine.Imaging.ImageCodec.Decode(File.ReadAllBytes(Path.Combine(folder, "coloured", "roi.png"))).Bands);
            Assert.Equal(codes, Engine.Imaging.ImageCodec.Decode(File.ReadAllBytes(Path.Combine(folder, "codes", "roi.png"))).Pixels);

            // Merging stroma into tumor leaves one code.
            (int mergeExit, string mergeOutput, string mergeError) = await RunAsync("dataset", "merge", "--table", table, "--masks", Path.Combine(folder, "masks"), "--out", Path.Combine(folder, "merged"), "--map", "stroma=tumor");
            Assert.True(mergeExit == ExitCodes.Success, mergeError);
            Assert.Contains("stroma -> tumor", mergeOutput, StringComparison.Ordinal);
            Assert.All(Engine.Imaging.ImageCodec.Decode(File.ReadAllBytes(Path.Combine(folder, "merged", "roi.png"))).Pixels, code => Assert.Equal(1, code));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Dataset_StatsOnAMaskWithAnUnknownCode_FailsNamingTheCode()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-dataset-bad").FullName;
        try
        {
            var codes = new byte[16 * 16];
            codes[3] = 99;
            File.WriteAllBytes(Path.Combine(folder, "bad.png"), Engine.Imaging.ImageCodec.EncodePng(new Engine.Imaging.Raster(16, 16, 1, codes)));

            (int exitCode, _, string error) = await RunAsync("dataset", "stats", "--table", TestData.Path("bcss", "gtruth_codes.tsv"), "--masks", folder, "--out", folder);

            Assert.Equal(ExitCodes.Failure, exitCode);
            Assert.Contains("code 99", error, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(folder, "class-stats.csv")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Dataset_StatsOnAnRgbMask_FailsPointingToPaletteToCodes()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-dataset-rgb").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(folder, "colour.png"), Engine.Imaging.ImageCodec.EncodePng(new Engine.Imaging.Raster(16, 16, 3, new byte[16 * 16 * 3])));

            (int exitCode, _, string error) = await RunAsync("dataset", "stats", "--table", TestData.Path("bcss", "gtruth_codes.tsv"), "--masks", folder, "--out", Path.Combine(folder, "stats"));

            Assert.Equal(ExitCodes.Failure, exitCode);
            Assert.Contains("has 3 bands", error, StringComparison.Ordinal);
            Assert.Contains("dataset palette --to-codes", error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Dataset_PaletteToCodesOnAntiAliasedEdges_RefusedWithoutToleranceSnappedAndCountedWithIt()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-dataset-edges").FullName;
        try
        {
            // 10x10: tumor (#800000) left, stroma (#008000) right, and between them a column blended 8.4 from tumor.
            var rgb = new byte[10 * 10 * 3];
            for (int i = 0; i < 100; i++)
            {
                (rgb[3 * i], rgb[(3 * i) + 1], rgb[(3 * i) + 2]) = (i % 10) switch { < 4 => ((byte)128, (byte)0, (byte)0), 4 => ((byte)122, (byte)5, (byte)3), _ => ((byte)0, (byte)128, (byte)0) };
            }

            Directory.CreateDirectory(Path.Combine(folder, "coloured"));
            File.WriteAllBytes(Path.Combine(folder, "coloured", "roi.png"), Engine.Imaging.ImageCodec.EncodePng(new Engine.Imaging.Raster(10, 10, 3, rgb)));
            string table = TestData.Path("bcss", "gtruth_codes.tsv");

            (int exactExit, _, string exactError) = await RunAsync("dataset", "palette", "--to-codes", "--table", table, "--masks", Path.Combine(folder, "coloured"), "--out", Path.Combine(folder, "exact"));
            (int nearExit, string nearOutput, string nearError) = await RunAsync("dataset", "palette", "--to-codes", "--tolerance", "10", "--table", table,
                "--masks", Path.Combine(folder, "coloured"), "--out", Path.Combine(folder, "codes"));

            Assert.Equal(ExitCodes.Failure, exactExit);
            Assert.Contains("#7a0503 at x 4, y 0", exactError, StringComparison.Ordinal);
            Assert.Contains("--tolerance", exactError, StringComparison.Ordinal);
            Assert.True(nearExit == ExitCodes.Success, nearError);
            Assert.Contains("10 of 100 pixels (10.00 %) were off the table's colours", nearOutput, StringComparison.Ordinal);
            Assert.Equal(Enumerable.Range(0, 100).Select(i => i % 10 < 5 ? (byte)1 : (byte)2), Engine.Imaging.ImageCodec.Decode(File.ReadAllBytes(Path.Combine(folder, "codes", "roi.png"))).Pixels);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Dataset_CutWhereNoPatchReachesMinValid_FailsNamingTheOptionAndTheLargestShare()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-dataset-empty-cut").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(folder, "images"));
            Directory.CreateDirectory(Path.Combine(folder, "masks"));
            var codes = new byte[256 * 256];
            codes.AsSpan(0, 256 * 64).Fill(1);   // tumor in the top quarter; the rest outside_roi (code 0)
            File.WriteAllBytes(Path.Combine(folder, "masks", "roi.png"), Engine.Imaging.ImageCodec.EncodePng(new Engine.Imaging.Raster(256, 256, 1, codes)));
            File.WriteAllBytes(Path.Combine(folder, "images", "roi.png"), Engine.Imaging.ImageCodec.EncodePng(new Engine.Imaging.Raster(256, 256, 3, new byte[256 * 256 * 3])));

            (int exitCode, string output, string error) = await RunAsync("dataset", "cut", "--table", TestData.Path("bcss", "gtruth_codes.tsv"), "--images", Path.Combine(folder, "images"),
                "--masks", Path.Combine(folder, "masks"), "--out", Path.Combine(folder, "patches"));

            Assert.Equal(ExitCodes.Failure, exitCode);
            Assert.DoesNotContain("0 patches", output, StringComparison.Ordinal);
            Assert.Contains("--min-valid 0.5", error, StringComparison.Ordinal);
            Assert.Contains("'outside_roi'", error, StringComparison.Ordinal);
            Assert.Contains("the largest is 0.25", error, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(folder, "patches", "index.csv")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task LogFile_Given_WritesStructuredJsonLines()
    {
        string logFile = Path.Combine(Path.GetTempPath(), $"slideplugin-{Guid.NewGuid():N}.jsonl");
        try
        {
            await RunAsync("analyze", TestData.Path("slides", "unopenable.tiff"), "--log-level", "Debug", "--log-file", logFile);

            string[] lines = File.ReadAllLines(logFile);
            Assert.NotEmpty(lines);
            using var first = System.Text.Json.JsonDocument.Parse(lines[0]);
            Assert.Equal("Debug", first.RootElement.GetProperty("Level").GetString());
            Assert.Equal("OpenSlide", first.RootElement.GetProperty("Properties").GetProperty("Library").GetString());
            Assert.Contains("3.4.1", first.RootElement.GetProperty("RenderedMessage").GetString(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(logFile);
        }
    }
}
