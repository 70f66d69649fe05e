using Serilog;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Encoders;
using SlidePlugin.Engine.Mil;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Sidecar.Services;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Services;

/// <summary>
/// The Train RPC end to end over our HTTP/2 transport, on small MNIST-bags runs: the stream's shape, checkpoints on
/// disk, cancellation keeping the last epoch and resuming from it, one run at a time, and bad requests.
/// </summary>
public sealed class TrainingServiceTests : IAsyncLifetime
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("slideplugin-train-rpc").FullName;
    private SidecarServer? _server;
    private GrpcChannel _channel = null!;
    private TrainingService.TrainingServiceClient _client = null!;

    private string RunsDirectory => Path.Combine(_scratch, "work", TrainingServiceImpl.RunsFolder);

    /// <summary>A model root besides the work folder: tile encoders are read from the model roots.</summary>
    private string ModelsDirectory => Path.Combine(_scratch, "models");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Path.Combine(_scratch, "data"));
        Directory.CreateDirectory(ModelsDirectory);
        var roots = new SlideRoots([TestData.Root, Path.Combine(_scratch, "data")]);
        var service = new TrainingServiceImpl(roots, Path.Combine(_scratch, "work"), models: new ModelRoots([Directory.CreateDirectory(Path.Combine(_scratch, "work")).FullName, ModelsDirectory]));
        ILogger logger = new LoggerConfiguration().MinimumLevel.Warning().WriteTo.Console().CreateLogger();
        _server = SidecarServer.Create(new ServerSettings { Listen = "127.0.0.1:0" }, logger, service.BindTo);
        await _server.StartAsync();
        _channel = SlidePluginChannel.ForAddress(_server.Addresses.Single());
        _client = new TrainingService.TrainingServiceClient(_channel);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        if (_server is not null)
        {
            await _server.StopAsync();
            await _server.DisposeAsync();
        }

        Directory.Delete(_scratch, recursive: true);
    }

    private static TrainRequest MnistRun(string runName, int epochs, int trainBags = 30) => new()
    {
        Dataset = DatasetKind.MnistBags,
        DataPath = "mnist",
        RunName = runName,
        Attention = AttentionKind.Plain,
        Epochs = epochs,
        Seed = 3,
        MnistBags = new MnistBagsParameters { TrainBags = trainBags, TestBags = 20 },
    };

    private static async Task<List<TrainResponse>> ReadAllAsync(AsyncServerStreamingCall<TrainResponse> call)
    {
        var messages = new List<TrainResponse>();
        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
            messages.Add(call.ResponseStream.Current);
        }

        return messages;
    }

    [Fact]
    public async Task Train_TinyMnistBags_StartedThenOneSummaryPerEpochThenCheckpointsOnDisk()
    {
        using AsyncServerStreamingCall<TrainResponse> call = _client.Train(MnistRun("tiny", epochs: 2));

        List<TrainResponse> messages = await ReadAllAsync(call);

        Assert.Equal(TrainResponse.EventOneofCase.Started, messages[0].EventCase);
        Assert.Equal(50, messages[0].Started.BagCount); // 30 training + 20 test bags
        Assert.Equal(["no 9", "has 9"], messages[0].Started.Classes);
        Assert.Equal([1, 2], messages.Where(m => m.EventCase == TrainResponse.EventOneofCase.Epoch).Select(m => m.Epoch.Epoch));
        Assert.All(messages.Where(m => m.EventCase == TrainResponse.EventOneofCase.Epoch), m => Assert.True(m.Epoch.Train.Loss is > 0 and < 10));
        TrainingFinished finished = messages[^1].Finished;
        Assert.NotNull(finished);
        Assert.Equal(Path.Combine(RunsDirectory, "tiny"), finished.RunDir);
        Assert.Equal(20, finished.Test.BagCount);
        Assert.InRange(finished.Test.Auc, 0, 1);
        (AttentionMil model, ModelCard card) = ModelCheckpoint.Load(finished.BestModelPath);
        Assert.Equal(28, card.Spec.PatchSize);
        Assert.Equal(MilAttention.Attention, model.Spec.Attention);
        Assert.True(File.Exists(finished.LastModelPath));
        Assert.Equal(3, File.ReadAllLines(Path.Combine(finished.RunDir, "metrics.csv")).Length); // header + 2 epochs
    }

    [Fact]
    public async Task Train_SlidesWithEncoderPath_HeadOnFeaturesAndFeaturesKeptForTheNextRun()
    {
        string data = Path.Combine(_scratch, "data");
        await TestEncoders.ExportSmallAsync(Path.Combine(ModelsDirectory, "small"));
        var rows = new List<string> { "slide,label,split" };
        for (int i = 0; i < 4; i++)
        {
            (string slide, bool tumour, _) = SyntheticSlides.CohortSlide(i);
            File.Copy(slide, Path.Combine(data, $"slide{i}.tiff")); // inside the roots: a link out of them would be refused
            rows.Add($"slide{i}.tiff,{(tumour ? "tumour" : "normal")},{(i < 2 ? "val" : "train")}");
        }

        File.WriteAllLines(Path.Combine(data, "slides.csv"), rows);
        TrainRequest Run(string name) => new() { Dataset = DatasetKind.Slides, DataPath = "slides.csv", EncoderPath = "small.onnx", RunName = name, Epochs = 2, TestFraction = 0 };

        List<TrainResponse> first = await ReadAllAsync(_client.Train(Run("features-1")));
        string featuresFolder = Path.Combine(_scratch, "work", TrainingServiceImpl.FeaturesFolder);
        DateTime[] written = [.. Directory.GetFiles(featuresFolder).Order().Select(File.GetLastWriteTimeUtc)];
        TrainRequest clam = Run("features-2");
        clam.Model = ModelKind.ClamMb;
        clam.Clam = new ClamParameters { Subtyping = true, InstanceSamples = 4 };
        List<TrainResponse> second = await ReadAllAsync(_client.Train(clam));
        TrainRequest clamOnPatches = MnistRun("mnist-clam", 1);
        clamOnPatches.Model = ModelKind.ClamSb;
        var clamRefused = await Assert.ThrowsAsync<RpcException>(() => ReadAllAsync(_client.Train(clamOnPatches)));
        TrainRequest mnistWithEncoder = MnistRun("mnist-encoder", 1);
        mnistWithEncoder.EncoderPath = "small.onnx";
        var wrongKind = await Assert.ThrowsAsync<RpcException>(() => ReadAllAsync(_client.Train(mnistWithEncoder)));

        Assert.Contains("small-seed0 features (128-d", first[0].Started.Description, StringComparison.Ordinal);
        (_, ModelCard card) = ModelCheckpoint.Load(second[^1].Finished.BestModelPath);
        Assert.Equal(MilInput.Features, card.Spec.Input);
        Assert.Equal(("clam-mb", true, 4), (card.Architecture, card.Spec.Subtyping, card.Spec.InstanceSamples));
        using (var encoder = TileEncoder.Load(Path.Combine(ModelsDirectory, "small.onnx")))
        {
            Assert.Equal(("small-seed0", encoder.Sha256), (card.EncoderName, card.EncoderSha256)); // the card says which encoder the head needs
        }

        Assert.Equal(StatusCode.InvalidArgument, clamRefused.StatusCode);
        Assert.Contains("A CLAM head (ClamSb) trains on tile features", clamRefused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(4, written.Length);
        Assert.Equal(written, Directory.GetFiles(featuresFolder).Order().Select(File.GetLastWriteTimeUtc)); // reused, not made again
        Assert.Equal(StatusCode.InvalidArgument, wrongKind.StatusCode);

        // A list that names a slide outside the roots is refused as a direct request for it would be.
        File.WriteAllLines(Path.Combine(data, "outside.csv"), ["slide,label", $"{TestData.Path("slides", "CMU-1-Small-Region.svs")},0", "/etc/hostname,1"]);
        TrainRequest outside = Run("outside");
        outside.DataPath = "outside.csv";
        var refused = await Assert.ThrowsAsync<RpcException>(() => ReadAllAsync(_client.Train(outside)));
        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Contains("/etc/hostname", refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Train_CancelledAfterFirstEpoch_KeepsFinishedEpochsRefusesASecondRunMeanwhileAndResumes()
    {
        using var cancel = new CancellationTokenSource();
        var call = _client.Train(MnistRun("stopped", epochs: 40, trainBags: 60), new CallOptions(cancellationToken: cancel.Token));
        while (await call.ResponseStream.MoveNext(CancellationToken.None) && call.ResponseStream.Current.EventCase != TrainResponse.EventOneofCase.Epoch)
        {
        }

        using (AsyncServerStreamingCall<TrainResponse> second = _client.Train(MnistRun("other", epochs: 1)))
        {
            RpcException busy = await Assert.ThrowsAsync<RpcException>(() => ReadAllAsync(second));
            Assert.Equal(StatusCode.ResourceExhausted, busy.StatusCode);
        }

        await cancel.CancelAsync();
        call.Dispose();

        // The server finishes the bag in hand, then frees the slot; the epochs done stay on disk.
        List<TrainResponse> resumed = [];
        for (int attempt = 0; ; attempt++)
        {
            string metrics = Path.Combine(RunsDirectory, "stopped", "metrics.csv");
            int epochsDone = File.ReadAllLines(metrics).Length - 1;
            Assert.InRange(epochsDone, 1, 39);
            TrainRequest resume = MnistRun("stopped", epochs: epochsDone + 1, trainBags: 60);
            resume.Resume = true;
            try
            {
                resumed = await ReadAllAsync(_client.Train(resume));
                Assert.Equal([epochsDone + 1], resumed.Where(m => m.EventCase == TrainResponse.EventOneofCase.Epoch).Select(m => m.Epoch.Epoch));
                break;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted && attempt < 100)
            {
                await Task.Delay(100);
            }
        }

        Assert.Equal(TrainResponse.EventOneofCase.Finished, resumed[^1].EventCase);
        Assert.True(File.Exists(resumed[^1].Finished.BestModelPath));
    }

    [Fact]
    public async Task Train_RunFolderHoldingARunWithoutResume_FailedPreconditionAndRunUntouched()
    {
        await ReadAllAsync(_client.Train(MnistRun("kept", epochs: 1)));
        string runFile = Path.Combine(RunsDirectory, "kept", "run.safetensors");
        byte[] before = await File.ReadAllBytesAsync(runFile);

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => ReadAllAsync(_client.Train(MnistRun("kept", epochs: 1))));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("resume", error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllBytesAsync(runFile));
    }

    [Theory]
    [InlineData("../escape", "mnist", StatusCode.InvalidArgument, "run_name")]
    [InlineData("", "mnist", StatusCode.InvalidArgument, "run_name")]
    [InlineData("ok", "/etc", StatusCode.PermissionDenied, "outside")]
    [InlineData("ok", "no-such-folder", StatusCode.NotFound, "no-such-folder")]
    public async Task Train_BadRunNameOrDataPath_ClearStatusAndNothingWritten(string runName, string dataPath, StatusCode expected, string named)
    {
        TrainRequest request = MnistRun(runName, epochs: 1);
        request.DataPath = dataPath;

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => ReadAllAsync(_client.Train(request)));

        Assert.Equal(expected, error.StatusCode);
        Assert.Contains(named, error.Status.Detail, StringComparison.Ordinal);
        Assert.False(Directory.Exists(RunsDirectory));
    }

    [Fact]
    public async Task Train_TruncatedMnistFile_InvalidArgumentNamingTheFileAndServerStillTrains()
    {
        string folder = Path.Combine(_scratch, "data", "broken-mnist");
        Directory.CreateDirectory(folder);
        foreach (string file in Directory.GetFiles(TestData.Path("mnist")))
        {
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        }

        string truncated = Path.Combine(folder, "train-images-idx3-ubyte.gz");
        byte[] bytes = await File.ReadAllBytesAsync(truncated);
        await File.WriteAllBytesAsync(truncated, bytes[..(bytes.Length / 2)]);
        TrainRequest request = MnistRun("broken", epochs: 1);
        request.DataPath = "broken-mnist";

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => ReadAllAsync(_client.Train(request)));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("train-images-idx3-ubyte", error.Status.Detail, StringComparison.Ordinal);
        List<TrainResponse> next = await ReadAllAsync(_client.Train(MnistRun("after", epochs: 1)));
        Assert.Equal(TrainResponse.EventOneofCase.Finished, next[^1].EventCase);
    }
}
