using SlidePlugin.Engine.Encoders;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Encoders;

/// <summary>Encoders exported by Debian's PyTorch (tests/reference/export_encoder.py), run by ONNX Runtime, against PyTorch on the same tiles.</summary>
public sealed class TileEncoderTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-encoders").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData("small", 24)]          // CI's encoder: 96 px in, 128 features
    [InlineData("clam-resnet50", 6)]   // CLAM's: ResNet-50 cut after layer3, 224 px in, 1024 features
    public async Task Encode_CmuTissueTilesAtTheCardsMpp_MatchesPyTorchWithin1e4Relative(string arch, int count)
    {
        string model = await ExportAsync(arch);
        using TileEncoder encoder = TileEncoder.Load(model + ".onnx");
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        (TileGrid grid, _) = TileGrid.OverTissue(slide, slide.RequireMpp(), new TileGridOptions
        {
            TileSize = encoder.Card.InputSize,
            TargetMpp = encoder.Card.Mpp,
            MinTissueFraction = 0.5,
        });
        Raster[] tiles = [.. grid.Tiles.Take(count).Select(t => grid.Read(slide, t))];

        float[] ours = encoder.Encode(tiles);
        float[] torch = await PyTorchFeaturesAsync(model, tiles);

        int dim = encoder.Card.OutputDim;
        Assert.Equal(count, tiles.Length);
        Assert.Equal(count * dim, ours.Length);
        Assert.Equal(torch.Length, ours.Length);
        for (int i = 0; i < count; i++)
        {
            double error = 0, norm = 0;
            for (int d = 0; d < dim; d++)
            {
                double a = ours[(i * dim) + d], b = torch[(i * dim) + d];
                error += (a - b) * (a - b);
                norm += b * b;
            }

            // Float32 convolutions summed in another order: about 1e-6 here; a preprocessing slip is 1e-2 or more.
            Assert.True(Math.Sqrt(error / norm) <= 1e-4, $"tile {i}: relative L2 error {Math.Sqrt(error / norm):E2}");
        }

        Assert.NotEqual(ours.AsSpan(0, dim).ToArray(), ours.AsSpan(dim, dim).ToArray()); // tiles differ, so do their features
        Assert.Equal(64, encoder.Sha256.Length);
    }

    [Fact]
    public async Task Encode_TileOfAnotherSize_ResizedToTheInputFirst()
    {
        string model = await ExportAsync("small");
        using TileEncoder encoder = TileEncoder.Load(model + ".onnx");
        var big = new Raster(192, 192, 3, [.. Enumerable.Range(0, 192 * 192 * 3).Select(i => (byte)(i * 7 % 251))]);

        float[] direct = encoder.Encode([big]);
        float[] resized = encoder.Encode([ImageCodec.Resize(big, 96, 96)]);

        Assert.Equal(resized, direct);
    }

    [Fact]
    public async Task Load_CardThatDoesNotFitTheModel_ErrorNamingBoth()
    {
        string model = await ExportAsync("small");
        string card = File.ReadAllText(model + ".json");
        File.WriteAllText(model + ".json", card.Replace("\"output_dim\": 128", "\"output_dim\": 1024", StringComparison.Ordinal));

        var error = Assert.Throws<EncoderException>(() => TileEncoder.Load(model + ".onnx"));

        Assert.Contains("gives [?, 128]; its card says [batch, 1024] (output_dim)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Load_NoCardBeside_ErrorSayingWhatAnEncoderIs()
    {
        string model = await ExportAsync("small");
        File.Delete(model + ".json");

        var error = Assert.Throws<EncoderException>(() => TileEncoder.Load(model + ".onnx"));

        Assert.Contains("an encoder is NAME.onnx with NAME.json beside it", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Load_CudaDevice_RunsThereOrSaysWhatIsMissing()
    {
        // CI has no GPU: there the message must name the package and the libraries. Where CUDA is present, the
        // features must equal the CPU's (within float32 reordering).
        string model = await ExportAsync("small");
        bool cuda = TileEncoder.AvailableProviders.Contains("CUDAExecutionProvider") && File.Exists("/dev/nvidia0");
        if (!cuda)
        {
            var error = Assert.Throws<EncoderException>(() => TileEncoder.Load(model + ".onnx", EncoderDevice.Parse("cuda:0")));
            Assert.Contains("--device cuda:0 needs ONNX Runtime's CUDA build", error.Message, StringComparison.Ordinal);
            Assert.Contains("Microsoft.ML.OnnxRuntime.Gpu.Linux", error.Message, StringComparison.Ordinal);
            Assert.Contains("libcudnn.so.9", error.Message, StringComparison.Ordinal);
            return;
        }

        var tile = new Raster(96, 96, 3, [.. Enumerable.Range(0, 96 * 96 * 3).Select(i => (byte)(i * 13 % 241))]);
        using TileEncoder gpu = TileEncoder.Load(model + ".onnx", EncoderDevice.Parse("cuda:0"));
        using TileEncoder cpu = TileEncoder.Load(model + ".onnx");
        float[] a = gpu.Encode([tile]), b = cpu.Encode([tile]);
        Assert.All(a.Zip(b), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-3 * (1 + Math.Abs(p.Second))));
    }

    [Theory]
    [InlineData("cpu", null)]
    [InlineData("cuda", 0)]
    [InlineData("CUDA:3", 3)]
    public void Parse_Devices_CpuOrCudaIndex(string text, int? index) => Assert.Equal(index, EncoderDevice.Parse(text).CudaDevice);

    [Fact]
    public void Parse_Unknown_ArgumentExceptionNamingTheForms() =>
        Assert.Equal("Device 'gpu0' is not cpu, cuda or cuda:N.", Assert.Throws<FormatException>(() => EncoderDevice.Parse("gpu0")).Message);

    private async Task<string> ExportAsync(string arch)
    {
        string model = Path.Combine(_folder, arch);
        if (!File.Exists(model + ".onnx"))
        {
            await ExternalProcess.RunReferenceScriptAsync("export_encoder.py", "export", "--arch", arch, "--out", model);
        }

        return model;
    }

    private async Task<float[]> PyTorchFeaturesAsync(string model, Raster[] tiles)
    {
        string raw = Path.Combine(_folder, "tiles.raw"), output = Path.Combine(_folder, "features.f32");
        await File.WriteAllBytesAsync(raw, [.. tiles.SelectMany(t => t.Pixels)]);
        await ExternalProcess.RunReferenceScriptAsync("export_encoder.py", "features", "--weights", model + ".pt", "--tiles", raw,
            "--count", tiles.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), "--out", output);
        byte[] bytes = await File.ReadAllBytesAsync(output);
        float[] features = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, features, 0, bytes.Length);
        return features;
    }
}
