using Serilog;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Engine.Training;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Cli;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Sidecar.Services;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Services;

/// <summary>
/// Models under the model roots, as <c>serve</c> sets them up by default: one server with TrainingService and
/// AnalysisService sharing a work folder that is the model root, slides (and a model placed among them) under the slide roots.
/// </summary>
public sealed class ModelRootsTests : IAsyncLifetime
{
    private const string Cmu = "CMU-1-Small-Region.svs";
    private readonly string _scratch = Directory.CreateTempSubdirectory("slideplugin-model-roots").FullName;
    private SidecarServer? _server;
    private readonly List<IDisposable> _services = [];
    private GrpcChannel _channel = null!;

    private string Work => Path.Combine(_scratch, "work");

    private string Data => Path.Combine(_scratch, "data");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Data);
        var slides = new SlideRoots([TestData.Path("slides"), Data]);
        var models = new ModelRoots([Directory.CreateDirectory(Work).FullName]);
        var training = new TrainingServiceImpl(slides, Work, models: models);
        var analysis = new AnalysisServiceImpl(slides, Work, BundledModel.Path, models: models);
        _services.Add(analysis);
        ILogger logger = new LoggerConfiguration().MinimumLevel.Warning().WriteTo.Console().CreateLogger();
        _server = SidecarServer.Create(new ServerSettings { Listen = "127.0.0.1:0" }, logger, registry =>
        {
            training.BindTo(registry);
            analysis.BindTo(registry);
        });
        await _server.StartAsync();
        _channel = SlidePluginChannel.ForAddress(_server.Addresses.Single());
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        if (_server is not null)
        {
            await _server.StopAsync();
            await _server.DisposeAsync();
        }

        _services.ForEach(s => s.Dispose());
        Directory.Delete(_scratch, recursive: true);
    }

    [Fact]
    public async Task ListModels_ModelTrainedOverGrpc_ListedWithItsCardThenAcceptedByAnalyzeSlide()
    {
        // Four UCSB images (two of each class) make a one-epoch run of RGB 32 px patches: a model slides can use.
        string ucsb = Path.Combine(Data, "ucsb");
        Directory.CreateDirectory(ucsb);
        foreach (string name in new[] { "benign1", "benign2", "malignant1", "malignant2" })
        {
            File.Copy(TestData.Path("ucsb-breast", $"ytma10_010704_{name}_ccd.tif"), Path.Combine(ucsb, $"ytma10_010704_{name}_ccd.tif"));
        }

        var train = new TrainRequest
        {
            Dataset = DatasetKind.Ucsb, DataPath = "ucsb", RunName = "ucsb-tiny", Epochs = 1, Seed = 1, PatchSize = 32,
            ValidationFraction = 0, TestFraction = 0, Mpp = 0.5, ModelName = "ucsb-tiny",
        };
        TrainingFinished finished = await TrainAsync(train);
        var analyses = new AnalysisService.AnalysisServiceClient(_channel);

        ListModelsResponse list = await analyses.ListModelsAsync(new ListModelsRequest());
        ModelInfo listed = Assert.Single(list.Models, m => m.Path == finished.BestModelPath);
        AnalysisResult result = await analyses.AnalyzeSlideToResultAsync(new AnalyzeSlideRequest { Path = Cmu, ModelPath = listed.Path });

        Assert.Equal(("ucsb-tiny", "gated-attention-mil", "patches", 32, 3, 0.5), (listed.Name, listed.Architecture, listed.Input, listed.PatchSize, listed.Channels, listed.Mpp));
        Assert.Equal(["benign", "malignant"], listed.Classes);
        Assert.Contains("UCSB", listed.TrainingData, StringComparison.Ordinal);
        Assert.Equal(ModelCheckpoint.Sha256Of(finished.BestModelPath), listed.WeightsSha256);
        Assert.Empty(listed.Error);
        Assert.Contains(list.Models, m => m.Path == finished.LastModelPath);
        Assert.DoesNotContain(list.Models, m => m.Path.EndsWith(MilTrainer.RunFile, StringComparison.Ordinal)); // the resume state has no card

        Assert.StartsWith(Path.Combine(Work, TrainingServiceImpl.RunsFolder), finished.BestModelPath, StringComparison.Ordinal);
        Assert.Equal("ucsb-tiny", result.Header.ModelName);
        Assert.Equal(ModelCheckpoint.Sha256Of(finished.BestModelPath), result.Header.ModelSha256);
        Assert.True(result.Header.TileCount > 0);
    }

    [Fact]
    public async Task ListModels_CheckpointsOfEveryKind_DefaultFirstBrokenCardWithItsErrorNoCardOrLinkOutLeftOut()
    {
        var spec = new AttentionMilSpec { Attention = MilAttention.Attention, PatchSize = 28, Channels = 1 };
        string good = Path.Combine(Work, "b-good.safetensors"), broken = Path.Combine(Work, "a-broken.safetensors");
        ModelCheckpoint.Save(good, new AttentionMil(spec, new TensorRandom(1)), new ModelCard { Name = "grey", Spec = spec, Classes = ["no", "yes"] });
        File.Copy(good, broken);
        File.WriteAllText(ModelCheckpoint.CardPathFor(broken), "{ not json");
        File.Copy(good, Path.Combine(Work, "weights-only.safetensors")); // no card: not a model
        string outside = Path.Combine(Data, "outside.safetensors");
        ModelCheckpoint.Save(outside, new AttentionMil(spec, new TensorRandom(2)), new ModelCard { Name = "outside", Spec = spec, Classes = ["no", "yes"] });
        File.CreateSymbolicLink(Path.Combine(Work, "c-link.safetensors"), outside);
        File.CreateSymbolicLink(Path.Combine(Work, "c-link.json"), ModelCheckpoint.CardPathFor(outside));
        var headSpec = new AttentionMilSpec { Input = MilInput.Features, FeatureSize = 8, EmbeddingSize = 8, AttentionSize = 4 };
        string head = Path.Combine(Work, "d-head.safetensors");
        ModelCheckpoint.Save(head, new AttentionMil(headSpec, new TensorRandom(3)), new ModelCard { Name = "head", Spec = headSpec, Classes = ["no", "yes"], EncoderName = "enc", EncoderSha256 = "abc" });

        ListModelsResponse list = await new AnalysisService.AnalysisServiceClient(_channel).ListModelsAsync(new ListModelsRequest());

        Assert.Equal([Path.GetFullPath(BundledModel.Path), broken, good, head], list.Models.Select(m => m.Path));
        Assert.Equal([true, false, false, false], list.Models.Select(m => m.IsDefault));
        Assert.Equal(("ucsb-gated-amil", 0.5, 32), (list.Models[0].Name, list.Models[0].Mpp, list.Models[0].PatchSize));
        Assert.Contains("a-broken.json' is not valid JSON", list.Models[1].Error, StringComparison.Ordinal);
        Assert.Empty(list.Models[1].Name);
        Assert.Equal(("grey", 1, false, ""), (list.Models[2].Name, list.Models[2].Channels, list.Models[2].HasMpp, list.Models[2].Error));
        Assert.Equal(("features", 8, 0, "enc", "abc"), (list.Models[3].Input, list.Models[3].FeatureSize, list.Models[3].PatchSize, list.Models[3].EncoderName, list.Models[3].EncoderSha256));
    }

    [Fact]
    public async Task ListModels_SegmentationCheckpoint_ListedAsFcnMilWithItsClassesNotAsABrokenCard()
    {
        string fcn = Path.Combine(Work, "fcn.safetensors");
        var net = new FullyConvolutionalNet(new FcnSpec { Channels = 3, Classes = 3, Widths = [8, 16, 16] }, new TensorRandom(3));
        SegmentationCheckpoint.Save(fcn, net, new SegmentationCard
        {
            Name = "tissue-fcn",
            Classes = [.. SyntheticShapes.Table().Classes.Select(SegmentationClass.Of)],
            Mpp = 2.0,
            Metrics = new Dictionary<string, double> { ["mean_iou"] = 0.5 },
        });

        ListModelsResponse list = await new AnalysisService.AnalysisServiceClient(_channel).ListModelsAsync(new ListModelsRequest());

        ModelInfo listed = Assert.Single(list.Models, m => m.Path == fcn);
        Assert.Equal(("", "tissue-fcn", "fcn-mil", "image", 3, 2.0, 0), (listed.Error, listed.Name, listed.Architecture, listed.Input, listed.Channels, listed.Mpp, listed.PatchSize));
        Assert.Equal(SyntheticShapes.Table().Classes.Select(c => c.Name), listed.Classes);
        Assert.Equal(0.5, listed.Metrics["mean_iou"]);
        Assert.Equal(SegmentationCheckpoint.Load(fcn).Card.WeightsSha256, listed.WeightsSha256);
    }

    [Theory]
    [InlineData("among-slides", StatusCode.PermissionDenied, "The model '{0}' is outside the model roots; the server only loads models under --model-root")]
    [InlineData("nothing.safetensors", StatusCode.NotFound, "Model 'nothing.safetensors' not found under the model roots")]
    public async Task AnalyzeSlide_ModelNotUnderTheModelRoots_StatusNamingTheModel(string model, StatusCode expected, string message)
    {
        // A checkpoint among the slides was a model before model roots; it is not one now.
        string path = Path.Combine(Data, "among-slides.safetensors");
        var spec = new AttentionMilSpec { Attention = MilAttention.Gated, PatchSize = 32, Channels = 3 };
        ModelCheckpoint.Save(path, new AttentionMil(spec, new TensorRandom(5)), new ModelCard { Name = "among-slides", Spec = spec, Classes = ["a", "b"], Mpp = 0.5 });
        string requested = model == "among-slides" ? path : model;
        var analyses = new AnalysisService.AnalysisServiceClient(_channel);

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => analyses.AnalyzeSlideToResultAsync(new AnalyzeSlideRequest { Path = Cmu, ModelPath = requested }));

        Assert.Equal(expected, error.StatusCode);
        Assert.Contains(string.Format(System.Globalization.CultureInfo.InvariantCulture, message, requested), error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty((await analyses.ListAnalysesAsync(new ListAnalysesRequest())).Analyses);
    }

    private async Task<TrainingFinished> TrainAsync(TrainRequest request)
    {
        using AsyncServerStreamingCall<TrainResponse> call = new TrainingService.TrainingServiceClient(_channel).Train(request);
        TrainingFinished? finished = null;
        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
            finished = call.ResponseStream.Current.Finished ?? finished;
        }

        return finished ?? throw new InvalidOperationException("The training stream ended without `finished`.");
    }
}
