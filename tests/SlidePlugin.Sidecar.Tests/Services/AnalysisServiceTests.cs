using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Serilog;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Engine.Tissue;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Sidecar.Services;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Services;

/// <summary>
/// AnalysisService end to end: two sidecars with empty stores (A and B) serving the shared slides with a seeded gated
/// model of 32 px patches at 0.5 µm/px; Python grpcio drives AnalyzeSlide, our C# client the other calls.
/// </summary>
[Collection(nameof(MeasuresProcessMemory))]
public sealed class AnalysisServiceTests : IAsyncLifetime
{
    private const string Cmu = "CMU-1-Small-Region.svs";
    private readonly string _scratch = Directory.CreateTempSubdirectory("slideplugin-analysis-rpc").FullName;
    private readonly List<(SidecarServer Server, AnalysisServiceImpl Service, GrpcChannel Channel)> _servers = [];

    private string ModelPath => Path.Combine(_scratch, "model.safetensors");

    public async Task InitializeAsync()
    {
        var spec = new AttentionMilSpec { Attention = MilAttention.Gated, PatchSize = 32, Channels = 3 };
        ModelCheckpoint.Save(ModelPath, new AttentionMil(spec, new TensorRandom(5)),
            new ModelCard { Name = "test-gated", Spec = spec, Classes = ["benign", "malignant"], Mpp = 0.5, InputMean = [0.5f], InputStd = [0.5f] });
        var roots = new SlideRoots([TestData.Path("slides")]);
        ILogger logger = new LoggerConfiguration().MinimumLevel.Warning().WriteTo.Console().CreateLogger();
        foreach (string name in new[] { "a", "b" })
        {
            var service = new AnalysisServiceImpl(roots, Path.Combine(_scratch, name), ModelPath);
            SidecarServer server = SidecarServer.Create(new ServerSettings { Listen = "127.0.0.1:0" }, logger, service.BindTo);
            await server.StartAsync();
            _servers.Add((server, service, SlidePluginChannel.ForAddress(server.Addresses.Single())));
        }
    }

    public async Task DisposeAsync()
    {
        foreach ((SidecarServer server, AnalysisServiceImpl service, GrpcChannel channel) in _servers)
        {
            channel.Dispose();
            await server.StopAsync();
            await server.DisposeAsync();
            service.Dispose();
        }

        Directory.Delete(_scratch, recursive: true);
    }

    [Fact]
    public async Task AnalyzeSlide_FromPythonGrpcio_TissueGridStreamedAttentionSumsToOneStoreAnswersAndResumeMatches()
    {
        string descriptors = Path.Combine(_scratch, "analysis.pb");
        await File.WriteAllBytesAsync(descriptors, ProtoDescriptors.SetOf(AnalysisServiceReflection.Descriptor));
        string[] targets = [.. _servers.Select(s => new Uri(s.Server.Addresses.Single()).Authority)];

        ProcessResult run = await ExternalProcess.RunAsync(ExternalProcess.ReferencePython,
            [Path.Combine(TestData.RepositoryRoot, "tests", "interop", "analysis_client.py"), targets[0], targets[1], descriptors, Cmu], timeout: TimeSpan.FromMinutes(5));
        Assert.True(run.ExitCode == 0, run.StandardError);
        using JsonDocument observed = JsonDocument.Parse(run.StandardOutput);
        JsonElement first = observed.RootElement.GetProperty("first"), second = observed.RootElement.GetProperty("second");
        JsonElement cancelled = observed.RootElement.GetProperty("cancelled"), resumed = observed.RootElement.GetProperty("resumed");

        // The tile count is the tissue grid's, built here independently with the same rules.
        using Slide slide = Slide.Open(TestData.Path("slides", Cmu));
        int gridTiles = TileGrid.Build(slide, 0.499, new TileGridOptions { TileSize = 32, TargetMpp = 0.5, MinTissueFraction = 0.5 }, TissueDetector.Detect(slide, 0.499)).Tiles.Count;
        Assert.Equal(gridTiles, first.GetProperty("tile_count").GetInt32());
        Assert.Equal(gridTiles, first.GetProperty("progress_tiles").GetInt32());
        Assert.Equal(gridTiles, first.GetProperty("final_tile_count").GetInt32());
        Assert.True(first.GetProperty("indices_in_order").GetBoolean());
        Assert.Equal(1.0, first.GetProperty("attention_sum").GetDouble(), 9);
        Assert.False(first.GetProperty("from_store").GetBoolean());

        Assert.True(second.GetProperty("from_store").GetBoolean());
        Assert.Equal(0, second.GetProperty("progress_tiles").GetInt32());
        Assert.Equal(Doubles(first, "attention"), Doubles(second, "attention"));
        Assert.Equal(Doubles(first, "probabilities"), Doubles(second, "probabilities"));

        Assert.True(cancelled.GetProperty("cancelled").GetBoolean());
        Assert.False(cancelled.GetProperty("result").GetBoolean());
        Assert.InRange(resumed.GetProperty("tiles_already_scored").GetInt32(), 1, gridTiles - 1);
        Assert.Equal(gridTiles - resumed.GetProperty("tiles_already_scored").GetInt32(), resumed.GetProperty("progress_tiles").GetInt32());
        Assert.Equal(Doubles(first, "probabilities"), Doubles(resumed, "probabilities"));
        Assert.Equal(Doubles(first, "attention"), Doubles(resumed, "attention"));
    }

    [Fact]
    public async Task ExportAnalysis_GeoJsonAndHeatmap_QuPathRulesAndThumbnailSize()
    {
        var client = new AnalysisService.AnalysisServiceClient(_servers[0].Channel);
        string key = await AnalyzeAsync(client);

        byte[] geojson = await client.ExportAnalysisBytesAsync(key, ExportFormat.Geojson);
        byte[] heatmap = await client.ExportAnalysisBytesAsync(key, ExportFormat.HeatmapPng);
        ListAnalysesResponse list = await client.ListAnalysesAsync(new ListAnalysesRequest());
        GetAnalysisResponse stored = await client.GetAnalysisAsync(new GetAnalysisRequest { Key = key, IncludeTiles = true });

        using JsonDocument document = JsonDocument.Parse(geojson);
        JsonElement[] features = [.. document.RootElement.GetProperty("features").EnumerateArray()];
        Assert.Equal(stored.Result.Tiles.Count, features.Length);
        Assert.All(features, f =>
        {
            JsonElement properties = f.GetProperty("properties");
            Assert.Equal("tile", properties.GetProperty("objectType").GetString());
            Assert.Equal(JsonValueKind.Array, properties.GetProperty("classification").GetProperty("color").ValueKind);
            Assert.All(properties.GetProperty("measurements").EnumerateObject(), m => Assert.Equal(JsonValueKind.Number, m.Value.ValueKind));
        });
        using Slide slide = Slide.Open(TestData.Path("slides", Cmu));
        Raster thumbnail = slide.GetThumbnail(1024);
        Raster image = ImageCodec.Decode(heatmap);
        Assert.Equal((thumbnail.Width, thumbnail.Height), (image.Width, image.Height));
        AnalysisSummary summary = Assert.Single(list.Analyses);
        Assert.True(summary.Complete);
        Assert.Equal(summary.TileCount, summary.TilesScored);
    }

    [Fact]
    public async Task AnalyzeSlide_FeatureHeadWithItsEncoder_ScoresEncoderSizedTilesAndRefusesAHeadWithoutIt()
    {
        string models = Path.Combine(_scratch, "models");
        Directory.CreateDirectory(models);
        await TestEncoders.ExportSmallAsync(Path.Combine(models, "small"));
        TestEncoders.SaveFeatureHead(Path.Combine(models, "head.safetensors"), seed: 2);
        using var service = new AnalysisServiceImpl(new SlideRoots([TestData.Path("slides")]), Path.Combine(_scratch, "encoder-server"), ModelPath, models: new ModelRoots([models]));
        await using SidecarServer server = SidecarServer.Create(new ServerSettings { Listen = "127.0.0.1:0" }, new LoggerConfiguration().CreateLogger(), service.BindTo);
        await server.StartAsync();
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());
        var client = new AnalysisService.AnalysisServiceClient(channel);

        AnalysisResult result = await client.AnalyzeSlideToResultAsync(new AnalyzeSlideRequest { Path = Cmu, ModelPath = "head.safetensors", EncoderPath = "small.onnx" });
        var withoutEncoder = await Assert.ThrowsAsync<RpcException>(() => client.AnalyzeSlideToResultAsync(new AnalyzeSlideRequest { Path = Cmu, ModelPath = "head.safetensors" }));
        var outside = await Assert.ThrowsAsync<RpcException>(() => client.AnalyzeSlideToResultAsync(new AnalyzeSlideRequest { Path = Cmu, ModelPath = "head.safetensors", EncoderPath = "/etc/hostname" }));

        using Slide slide = Slide.Open(TestData.Path("slides", Cmu));
        (TileGrid grid, _) = TileGrid.OverTissue(slide, slide.RequireMpp(), new TileGridOptions { TileSize = 96, TargetMpp = 0.5 });
        Assert.Equal(96, result.Header.TileSize);
        Assert.Equal(grid.Tiles.Count, result.Header.TileCount);
        Assert.Equal(StatusCode.InvalidArgument, withoutEncoder.StatusCode);
        Assert.Contains("give the tile encoder it was trained with", withoutEncoder.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.PermissionDenied, outside.StatusCode);
        await server.StopAsync();
    }

    [Fact]
    public async Task ExportAnalysisToFile_StoredAndUnknownKeys_WholeFileOrNothing()
    {
        var client = new AnalysisService.AnalysisServiceClient(_servers[0].Channel);
        string key = await AnalyzeAsync(client);
        string folder = Path.Combine(_scratch, "sdk-exports");
        Directory.CreateDirectory(folder);

        await client.ExportAnalysisToFileAsync(key, ExportFormat.Csv, Path.Combine(folder, "cmu.csv"));
        var missing = await Assert.ThrowsAsync<RpcException>(() => client.ExportAnalysisToFileAsync("0123456789abcdef", ExportFormat.Csv, Path.Combine(folder, "none.csv")));

        Assert.Equal(await client.ExportAnalysisBytesAsync(key, ExportFormat.Csv), await File.ReadAllBytesAsync(Path.Combine(folder, "cmu.csv")));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        Assert.Equal(["cmu.csv"], Directory.GetFiles(folder).Select(Path.GetFileName)); // no partial file, no temporary left
    }

    [Fact]
    public async Task ScoreBag_PatchesCutFromTheSlide_AttentionSumsToOneAndBadPatchIsInvalidArgument()
    {
        var client = new AnalysisService.AnalysisServiceClient(_servers[0].Channel);
        using Slide slide = Slide.Open(TestData.Path("slides", Cmu));
        using (AsyncDuplexStreamingCall<ScoreBagRequest, ScoreBagResponse> call = client.ScoreBag())
        {
            for (int i = 0; i < 3; i++)
            {
                var request = new ScoreBagRequest();
                for (int j = 0; j < 4; j++)
                {
                    Raster patch = slide.ReadRegionRgb(1000 + (i * 64), 1000 + (j * 64), 0, 32, 32);
                    request.Patches.Add(new EncodedImage { Width = 32, Height = 32, Channels = 3, Format = ImageFormat.Png, Data = ByteString.CopyFrom(ImageCodec.EncodePng(patch)) });
                }

                await call.RequestStream.WriteAsync(request);
            }

            await call.RequestStream.CompleteAsync();
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
            ScoreBagResponse response = call.ResponseStream.Current;
            Assert.Equal(12, response.Attention.Count);
            Assert.Equal(1.0, response.Attention.Sum(a => (double)a), 5);
            Assert.Equal(1.0, response.Probabilities.Sum(p => (double)p), 5);
            Assert.Equal(["benign", "malignant"], response.Classes);
        }

        using AsyncDuplexStreamingCall<ScoreBagRequest, ScoreBagResponse> bad = client.ScoreBag();
        await bad.RequestStream.WriteAsync(new ScoreBagRequest { Patches = { new EncodedImage { Format = ImageFormat.Png, Data = ByteString.CopyFromUtf8("not a png") } } });
        await bad.RequestStream.CompleteAsync();
        RpcException error = await Assert.ThrowsAsync<RpcException>(() => bad.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("Patch 0", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ScoreBag_PatchesWithTheirMpp_ResampledWithinTwiceTheModelsResolutionRefusedBeyond()
    {
        // The model takes 32 px at 0.5 µm/px: 64 px at 0.25 and 16 px at 1 show the same field, and are resampled to 32 px.
        using Slide slide = Slide.Open(TestData.Path("slides", Cmu));
        Raster fine = slide.ReadRegionRgb(1000, 1000, 0, 64, 64);
        Raster coarse = ImageCodec.Resize(fine, 16, 16);
        var client = new AnalysisService.AnalysisServiceClient(_servers[0].Channel);

        ScoreBagResponse fineScored = await ScoreAsync(client, [Png(fine)], mpp: 0.25);
        ScoreBagResponse fineAsTheModels = await ScoreAsync(client, [Png(ImageCodec.Resize(fine, 32, 32))], mpp: null);
        ScoreBagResponse coarseScored = await ScoreAsync(client, [Png(coarse)], mpp: 1.0);
        ScoreBagResponse coarseAsTheModels = await ScoreAsync(client, [Png(ImageCodec.Resize(coarse, 32, 32))], mpp: 0.5);
        RpcException tooFine = await Assert.ThrowsAsync<RpcException>(() => ScoreAsync(client, [Png(fine)], mpp: 0.2));
        RpcException tooCoarse = await Assert.ThrowsAsync<RpcException>(() => ScoreAsync(client, [Png(coarse)], mpp: 1.25));
        RpcException notItsSize = await Assert.ThrowsAsync<RpcException>(() => ScoreAsync(client, [Png(coarse), Png(ImageCodec.Resize(fine, 40, 40))], mpp: 0.25));
        RpcException noMpp = await Assert.ThrowsAsync<RpcException>(() => ScoreAsync(client, [Png(fine)], mpp: null));

        Assert.Equal(fineAsTheModels.Probabilities, fineScored.Probabilities);
        Assert.Equal(coarseAsTheModels.Probabilities, coarseScored.Probabilities);
        Assert.NotEqual(fineScored.Probabilities, coarseScored.Probabilities);
        Assert.All(new[] { tooFine, tooCoarse, notItsSize, noMpp }, e => Assert.Equal(StatusCode.InvalidArgument, e.StatusCode));
        Assert.Contains("Patches at 0.2 µm/px are 2.5x finer than model 'test-gated' takes (32x32 px at 0.5 µm/px, 80 px at 0.2 µm/px)", tooFine.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("Patches at 1.25 µm/px are 2.5x coarser", tooCoarse.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("send them at 0.25 to 1 µm/px", tooCoarse.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("Patch 0 is 16x16 px; at 0.25 µm/px model 'test-gated' takes 64x64 px patches (32x32 px at 0.5 µm/px)", notItsSize.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("Patch 0 is 64x64 px and the request gives no mpp: model 'test-gated' takes 32x32 px patches at 0.5 µm/px", noMpp.Status.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(ImageFormat.Png, "jpeg", "Patch 0 is declared PNG (IMAGE_FORMAT_PNG) but its bytes are a JPEG.")]
    [InlineData(ImageFormat.Jpeg, "png", "Patch 0 is declared JPEG (IMAGE_FORMAT_JPEG) but its bytes are a PNG.")]
    [InlineData(ImageFormat.Jpeg, "text", "Patch 0 cannot be decoded: it is declared JPEG (IMAGE_FORMAT_JPEG) but its bytes are not an image format the server knows (they begin 6E6F742061206A70).")]
    [InlineData(ImageFormat.Raw, "png", "(the bytes are a PNG: declare IMAGE_FORMAT_PNG)")]
    public async Task ScoreBag_DeclaredFormatNotTheBytes_InvalidArgumentNamingBoth(ImageFormat declared, string bytes, string expected)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", Cmu));
        Raster patch = slide.ReadRegionRgb(1000, 1000, 0, 32, 32);
        byte[] data = bytes switch { "jpeg" => ImageCodec.EncodeJpeg(patch), "png" => ImageCodec.EncodePng(patch), _ => "not a jpeg"u8.ToArray() };
        var client = new AnalysisService.AnalysisServiceClient(_servers[0].Channel);

        RpcException error = await Assert.ThrowsAsync<RpcException>(() =>
            ScoreAsync(client, [new EncodedImage { Format = declared, Width = 32, Height = 32, Channels = 3, Data = ByteString.CopyFrom(data) }], mpp: null));
        ScoreBagResponse undeclared = await ScoreAsync(client, [new EncodedImage { Format = ImageFormat.Unspecified, Data = ByteString.CopyFrom(ImageCodec.EncodePng(patch)) }], mpp: null);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains(expected, error.Status.Detail, StringComparison.Ordinal);
        Assert.Single(undeclared.Attention); // an undeclared format is decoded as it is
    }

    /// <summary>Scores one bag, one patch a message, <paramref name="mpp"/> on the first; a refusal is the response's RpcException.</summary>
    private static async Task<ScoreBagResponse> ScoreAsync(AnalysisService.AnalysisServiceClient client, EncodedImage[] patches, double? mpp)
    {
        using AsyncDuplexStreamingCall<ScoreBagRequest, ScoreBagResponse> call = client.ScoreBag();
        try
        {
            foreach (EncodedImage patch in patches)
            {
                var request = new ScoreBagRequest { Patches = { patch } };
                if (mpp is { } value && patch == patches[0])
                {
                    request.Mpp = value;
                }

                await call.RequestStream.WriteAsync(request);
            }

            await call.RequestStream.CompleteAsync();
        }
        catch (Exception e) when (e is RpcException or InvalidOperationException)
        {
            // The server ended the call while patches were still being sent: its status comes with the response.
        }

        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        return call.ResponseStream.Current;
    }

    private static EncodedImage Png(Raster patch) =>
        new() { Width = patch.Width, Height = patch.Height, Channels = patch.Bands, Format = ImageFormat.Png, Data = ByteString.CopyFrom(ImageCodec.EncodePng(patch)) };

    [Fact]
    public async Task ScoreBag_PngAnnouncing900Megapixels_ResourceExhaustedBeforeDecoding()
    {
        byte[] png = HostilePng.Black(30000, 30000); // under a megabyte
        var client = new AnalysisService.AnalysisServiceClient(_servers[0].Channel);
        using AsyncDuplexStreamingCall<ScoreBagRequest, ScoreBagResponse> call = client.ScoreBag();
        long before = GC.GetTotalMemory(forceFullCollection: true);

        await call.RequestStream.WriteAsync(new ScoreBagRequest { Patches = { new EncodedImage { Format = ImageFormat.Png, Data = ByteString.CopyFrom(png) } } });
        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Contains("Patch 0: The image is 30000x30000", error.Status.Detail, StringComparison.Ordinal);
        Assert.InRange(GC.GetTotalMemory(forceFullCollection: true) - before, long.MinValue, 64L << 20);
    }

    [Theory]
    [InlineData("grey")]
    [InlineData("raw -2 x -2")]
    public async Task ScoreBag_GreyPngScoredAndNegativeRawRefused(string kind)
    {
        var client = new AnalysisService.AnalysisServiceClient(_servers[0].Channel);
        using AsyncDuplexStreamingCall<ScoreBagRequest, ScoreBagResponse> call = client.ScoreBag();
        EncodedImage image = kind == "grey"
            ? new EncodedImage { Format = ImageFormat.Png, Data = ByteString.CopyFrom(HostilePng.Black(32, 32)) }
            : new EncodedImage { Format = ImageFormat.Raw, Width = -2, Height = -2, Channels = 3, Data = ByteString.CopyFrom(new byte[12]) };
        await call.RequestStream.WriteAsync(new ScoreBagRequest { Patches = { image } });
        await call.RequestStream.CompleteAsync();

        if (kind == "grey")
        {
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Single(call.ResponseStream.Current.Attention);
        }
        else
        {
            RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
            Assert.Contains("-2x-2", error.Status.Detail, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AnalyzeSlide_TargetFarFinerThanTheSlide_InvalidArgumentAtOnceNothingStored()
    {
        // target_mpp 1e-5 ran the server out of memory and the client saw only DEADLINE_EXCEEDED.
        var client = new AnalysisService.AnalysisServiceClient(_servers[1].Channel);
        using AsyncServerStreamingCall<AnalyzeSlideResponse> call = client.AnalyzeSlide(new AnalyzeSlideRequest { Path = Cmu, TargetMpp = 1e-5 },
            new CallOptions(deadline: DateTime.UtcNow.AddSeconds(30)));

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("at most 16x", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty((await client.ListAnalysesAsync(new ListAnalysesRequest())).Analyses);
    }

    [Theory]
    [InlineData("missing.svs", StatusCode.NotFound)]
    [InlineData("boxes.tiff", StatusCode.InvalidArgument)] // no resolution and no mpp_override
    [InlineData("/etc/hostname", StatusCode.PermissionDenied)]
    public async Task AnalyzeSlide_BadSlide_ClearStatusNothingStoredAndServerStillAnswers(string path, StatusCode expected)
    {
        var client = new AnalysisService.AnalysisServiceClient(_servers[0].Channel);
        using AsyncServerStreamingCall<AnalyzeSlideResponse> call = client.AnalyzeSlide(new AnalyzeSlideRequest { Path = path });

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(expected, error.StatusCode);
        Assert.Empty((await client.ListAnalysesAsync(new ListAnalysesRequest())).Analyses); // answers, and stored nothing
    }

    [Fact]
    public async Task AnalyzeSlide_TwoClientsAtOnce_BothWatchOneAnalysisWithIdenticalResults()
    {
        var client = new AnalysisService.AnalysisServiceClient(_servers[0].Channel);

        AnalyzeSlideResponse[][] runs = await Task.WhenAll(ReadAllAsync(client, Cmu), ReadAllAsync(client, Cmu));

        Assert.All(runs, r => Assert.Equal(AnalyzeSlideResponse.EventOneofCase.Result, r[^1].EventCase));
        Assert.Equal(runs[0][^1].Result.Probabilities, runs[1][^1].Result.Probabilities);
        Assert.Equal(runs[0].Where(m => m.FinalTiles is not null).SelectMany(m => m.FinalTiles.Tiles).Select(t => t.Attention),
            runs[1].Where(m => m.FinalTiles is not null).SelectMany(m => m.FinalTiles.Tiles).Select(t => t.Attention));
        Assert.Single((await client.ListAnalysesAsync(new ListAnalysesRequest())).Analyses);
    }

    [Fact]
    public async Task AnalyzeSlide_QueueFull_ResourceExhaustedWithAMessage()
    {
        var roots = new SlideRoots([TestData.Path("slides")]);
        using var service = new AnalysisServiceImpl(roots, Path.Combine(_scratch, "small-queue"), ModelPath, capacity: 1);
        await using SidecarServer server = SidecarServer.Create(new ServerSettings { Listen = "127.0.0.1:0" }, new LoggerConfiguration().CreateLogger(), service.BindTo);
        await server.StartAsync();
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());
        var client = new AnalysisService.AnalysisServiceClient(channel);
        using var first = client.AnalyzeSlide(new AnalyzeSlideRequest { Path = Cmu });
        Assert.True(await first.ResponseStream.MoveNext(CancellationToken.None)); // the header: the analysis holds the queue

        using var second = client.AnalyzeSlide(new AnalyzeSlideRequest { Path = Cmu, TileSize = 48 });
        RpcException error = await Assert.ThrowsAsync<RpcException>(() => second.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Contains("limit is 1", error.Status.Detail, StringComparison.Ordinal);
        await server.StopAsync();
    }

    private static async Task<AnalyzeSlideResponse[]> ReadAllAsync(AnalysisService.AnalysisServiceClient client, string path)
    {
        using AsyncServerStreamingCall<AnalyzeSlideResponse> call = client.AnalyzeSlide(new AnalyzeSlideRequest { Path = path });
        var messages = new List<AnalyzeSlideResponse>();
        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
            messages.Add(call.ResponseStream.Current);
        }

        return [.. messages];
    }

    [Fact]
    public async Task GetAnalysis_UnknownKey_NotFoundNamingListAnalyses()
    {
        var client = new AnalysisService.AnalysisServiceClient(_servers[0].Channel);

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => client.GetAnalysisAsync(new GetAnalysisRequest { Key = "nope" }).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Contains("ListAnalyses", error.Status.Detail, StringComparison.Ordinal);
    }

    private static async Task<string> AnalyzeAsync(AnalysisService.AnalysisServiceClient client)
    {
        using AsyncServerStreamingCall<AnalyzeSlideResponse> call = client.AnalyzeSlide(new AnalyzeSlideRequest { Path = Cmu });
        string key = "";
        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
            if (call.ResponseStream.Current.EventCase == AnalyzeSlideResponse.EventOneofCase.Result)
            {
                key = call.ResponseStream.Current.Result.Header.Key;
            }
        }

        return key;
    }

    private static double[] Doubles(JsonElement run, string name) => [.. run.GetProperty(name).EnumerateArray().Select(e => e.GetDouble())];
}
