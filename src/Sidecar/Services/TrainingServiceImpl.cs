using Grpc.Core;
using System.Threading.Channels;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Encoders;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Training;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Grpc;
using EngineMetrics = SlidePlugin.Engine.Training.ClassificationMetrics;
using ProtoMetrics = SlidePlugin.Protos.V1.ClassificationMetrics;
using ProtoProgress = SlidePlugin.Protos.V1.TrainingProgress;

using Contract = SlidePlugin.Protos.V1;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// <c>slideplugin.v1.TrainingService</c>: the trainer behind <c>slideplugin train</c>, driven over gRPC. Data sets come
/// from under the slide roots, tile encoders from under the model roots; runs go to <c>&lt;work-dir&gt;/runs/&lt;run_name&gt;</c>. One run at a time, because a run
/// uses every core.
/// </summary>
public sealed class TrainingServiceImpl : Contract.TrainingService.TrainingServiceBase
{
    /// <summary>Folder under the work folder that holds the runs.</summary>
    public const string RunsFolder = "runs";

    /// <summary>Folder under the work folder that holds slides' features (shared by runs with the same encoder and tiling).</summary>
    public const string FeaturesFolder = "features";

    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(1);

    private readonly SlideRoots _roots;
    private readonly ModelRoots _models;
    private readonly string _runsDirectory;
    private readonly string _featuresDirectory;
    private readonly EncoderDevice _device;
    private int _running; // 1 while a run holds the server's cores

    /// <summary>Creates the service reading data under <paramref name="roots"/> and writing runs under <paramref name="workDirectory"/>.</summary>
    /// <param name="roots">Where data sets may be read.</param>
    /// <param name="workDirectory">Where runs and features are written.</param>
    /// <param name="device">Where tile encoders run (serve --device).</param>
    /// <param name="models">Where tile encoders may be read; null: the work folder (created).</param>
    public TrainingServiceImpl(SlideRoots roots, string workDirectory, EncoderDevice device = default, ModelRoots? models = null)
    {
        ArgumentNullException.ThrowIfNull(roots);
        ArgumentException.ThrowIfNullOrEmpty(workDirectory);
        _roots = roots;
        _models = models ?? new ModelRoots([Directory.CreateDirectory(workDirectory).FullName]);
        _runsDirectory = Path.Combine(Path.GetFullPath(workDirectory), RunsFolder);
        _featuresDirectory = Path.Combine(Path.GetFullPath(workDirectory), FeaturesFolder);
        _device = device;
    }

    /// <summary>Binds the service's methods.</summary>
    public void BindTo(GrpcServiceRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.Add(this);
    }

    /// <inheritdoc />
    public override Task Train(TrainRequest request, IServerStreamWriter<TrainResponse> responseStream, ServerCallContext context) => TrainAsync(request, responseStream, context);

    private async Task TrainAsync(TrainRequest request, IServerStreamWriter<TrainResponse> responses, ServerCallContext context)
    {
        // Validate everything the request alone decides before taking the run slot.
        string runDirectory = RunDirectoryOf(request.RunName);
        TrainingOptions options = OptionsOf(request);
        if (request.EncoderPath.Length > 0 && request.Dataset != DatasetKind.Slides)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "encoder_path applies to the slides data set only."));
        }

        string? encoderPath = request.EncoderPath.Length > 0 ? _models.Resolve(request.EncoderPath) : null;
        if (Interlocked.CompareExchange(ref _running, 1, 0) != 0)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, "A training run is already in progress on this server; try again when it ends."));
        }

        TileEncoder? encoder = null;
        Task<TrainingResult>? training = null;
        try
        {
            encoder = encoderPath is null ? null : TileEncoder.Load(encoderPath, _device);
            BagDatasetSource source = SourceOf(request, options, encoder);
            // Training runs on its own thread; its events become messages here, written in order by this call.
            var events = Channel.CreateUnbounded<TrainResponse>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
            training = Task.Run(() => Train(source, options, runDirectory, events.Writer, context.CancellationToken), CancellationToken.None);
            // The trainer's own failure is rethrown by awaiting it below, with its type intact.
            _ = training.ContinueWith(_ => events.Writer.TryComplete(), TaskScheduler.Default);
            try
            {
                await foreach (TrainResponse response in events.Reader.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
                {
                    await responses.WriteAsync(response, context.CancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
                // The client left: wait for the trainer to stop at the next bag, so its files are complete.
                await ((Task)training).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                throw;
            }

            TrainingResult result = await training.ConfigureAwait(false);
            if (result.Status == TrainingStatus.Cancelled)
            {
                throw new RpcException(new Status(StatusCode.Cancelled, $"Training stopped; '{runDirectory}' holds the last finished epoch ({result.EpochsDone}); resume to continue."));
            }

            var finished = new TrainingFinished
            {
                RunDir = runDirectory,
                BestModelPath = result.BestModelPath ?? string.Empty,
                LastModelPath = result.LastModelPath ?? string.Empty,
                BestEpoch = result.BestEpoch,
                Seconds = result.Seconds,
            };
            if (result.Test is { } test)
            {
                finished.Test = ToProto(test);
            }

            await responses.WriteAsync(new TrainResponse { Finished = finished }, context.CancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (StatusOf(e) is { } status)
        {
            throw new RpcException(status);
        }
        finally
        {
            if (training is not null)
            {
                await ((Task)training).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing); // the encoder outlives its last use
            }

            encoder?.Dispose();
            Volatile.Write(ref _running, 0);
        }
    }

    /// <summary>Reads the data set and runs the trainer, posting its events; runs on a worker thread.</summary>
    private static TrainingResult Train(BagDatasetSource source, TrainingOptions options, string runDirectory, ChannelWriter<TrainResponse> events, CancellationToken cancellationToken)
    {
        BagDataset bags = source.Open();
        var started = new TrainingStarted { RunDir = runDirectory, BagCount = bags.Items.Count, Description = bags.Description };
        started.Classes.AddRange(bags.Classes);
        started.SkippedFiles.AddRange(bags.Skipped.Select(s => new Protos.V1.SkippedFile { Path = s.Path, Reason = s.Reason }));
        events.TryWrite(new TrainResponse { Started = started });

        var trainer = new MilTrainer(bags, options, runDirectory);
        DateTime nextProgress = DateTime.UtcNow;
        trainer.BagTrained += p =>
        {
            if (DateTime.UtcNow < nextProgress)
            {
                return;
            }

            nextProgress = DateTime.UtcNow + ProgressInterval;
            events.TryWrite(new TrainResponse
            {
                Progress = new ProtoProgress { Epoch = p.Epoch, Epochs = p.Epochs, BagsDone = p.Bag, BagCount = p.Bags, MeanLoss = p.MeanLoss },
            });
        };
        trainer.EpochFinished += e => events.TryWrite(new TrainResponse
        {
            Epoch = new EpochSummary
            {
                Epoch = e.Epoch,
                Epochs = options.Epochs,
                Train = ToProto(e.Train),
                Validation = ToProto(e.Validation),
                Seconds = e.Seconds,
                IsBest = e.IsBest,
            },
        });
        return trainer.Run(cancellationToken);
    }

    private string RunDirectoryOf(string runName)
    {
        bool valid = runName.Length is > 0 and <= 128 && runName[0] != '.'
                     && runName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
        return valid
            ? Path.Combine(_runsDirectory, runName)
            : throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"run_name '{runName}' is not a plain folder name: use 1-128 letters, digits, '-', '_' or '.', not starting with '.'."));
    }

    private static TrainingOptions OptionsOf(TrainRequest request)
    {
        var defaults = new TrainingOptions();
        var options = new TrainingOptions
        {
            Attention = request.Attention == AttentionKind.Plain ? MilAttention.Attention : MilAttention.Gated,
            Variant = request.Model switch { ModelKind.ClamSb => MilVariant.ClamSb, ModelKind.ClamMb => MilVariant.ClamMb, _ => MilVariant.Ilse },
            Subtyping = request.Clam?.Subtyping ?? false,
            BagWeight = request.Clam is { HasBagWeight: true } clam ? clam.BagWeight : defaults.BagWeight,
            InstanceSamples = request.Clam is { HasInstanceSamples: true } k ? k.InstanceSamples : defaults.InstanceSamples,
            Dropout = request.Clam is { HasDropout: true } d ? d.Dropout : null,
            Epochs = request.Epochs == 0 ? defaults.Epochs : request.Epochs,
            Seed = request.HasSeed ? request.Seed : defaults.Seed,
            Resume = request.Resume,
            ValidationFraction = request.HasValidationFraction ? request.ValidationFraction : defaults.ValidationFraction,
            TestFraction = request.HasTestFraction ? request.TestFraction : defaults.TestFraction,
            LearningRate = request.HasLearningRate ? request.LearningRate : defaults.LearningRate,
            WeightDecay = request.HasWeightDecay ? request.WeightDecay : defaults.WeightDecay,
            Augment = request.Augment,
            Mpp = request.HasMpp ? request.Mpp : null,
            ModelName = request.ModelName.Length > 0 ? request.ModelName : defaults.ModelName,
            Limitations = request.Limitations.Length > 0 ? request.Limitations : defaults.Limitations,
        };
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }

        if (options.Variant != MilVariant.Ilse && (request.Dataset != DatasetKind.Slides || request.EncoderPath.Length == 0))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"A CLAM head ({request.Model}) trains on tile features: use DATASET_KIND_SLIDES with encoder_path."));
        }

        return options;
    }

    private BagDatasetSource SourceOf(TrainRequest request, TrainingOptions options, TileEncoder? encoder)
    {
        if (request.Dataset == DatasetKind.Unspecified)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "dataset is unspecified: name the kind of data set (MNIST bags, UCSB, BreakHis, slides or folders)."));
        }

        var defaults = new MnistBagsOptions();
        MnistBagsParameters mnist = request.MnistBags ?? new MnistBagsParameters();
        return new BagDatasetSource
        {
            Kind = request.Dataset switch
            {
                DatasetKind.MnistBags => BagDatasetKind.MnistBags,
                DatasetKind.Ucsb => BagDatasetKind.Ucsb,
                DatasetKind.Breakhis => BagDatasetKind.BreakHis,
                DatasetKind.Slides => BagDatasetKind.Slides,
                DatasetKind.Folders => BagDatasetKind.Folders,
                _ => throw new RpcException(new Status(StatusCode.InvalidArgument, $"dataset {(int)request.Dataset} is not a known data set kind.")),
            },
            Path = _roots.Resolve(request.DataPath, folderAllowed: true),
            PatchSize = request.PatchSize == 0 ? null : request.PatchSize,
            Magnification = request.Magnification.Length > 0 ? request.Magnification : null,
            Mpp = options.Mpp,
            SlideMpp = request.HasSlideMpp ? request.SlideMpp : null,
            MaxWhite = request.HasMaxWhite ? request.MaxWhite : null,
            Policy = request.SkipUnreadable ? UnreadableFilePolicy.Skip : UnreadableFilePolicy.Fail,
            Encoder = encoder,
            FeaturesFolder = _featuresDirectory,
            // A client's list may name any file: each slide must be under a root, as if asked for directly.
            ResolveSlide = path => _roots.Resolve(path),
            MnistBags = defaults with
            {
                TrainBags = mnist.TrainBags == 0 ? defaults.TrainBags : mnist.TrainBags,
                TestBags = mnist.TestBags == 0 ? defaults.TestBags : mnist.TestBags,
                MeanBagLength = mnist.MeanBagLength == 0 ? defaults.MeanBagLength : mnist.MeanBagLength,
                Seed = options.Seed,
            },
        };
    }

    /// <summary>Trainer and data set failures as statuses; null for anything else (it then ends the call as INTERNAL).</summary>
    private static Status? StatusOf(Exception exception) => exception switch
    {
        DatasetException e => new Status(StatusCode.InvalidArgument, e.Message),
        EncoderException e => new Status(StatusCode.InvalidArgument, e.Message),
        ArgumentException e => new Status(StatusCode.InvalidArgument, e.Message),
        InvalidOperationException e => new Status(StatusCode.FailedPrecondition, e.Message),
        IOException e => new Status(StatusCode.Internal, $"Cannot write the run: {e.Message}"),
        _ => null,
    };

    private static ProtoMetrics ToProto(EngineMetrics metrics) => new()
    {
        BagCount = metrics.Count,
        Loss = metrics.Loss,
        Accuracy = metrics.Accuracy,
        Precision = metrics.Precision,
        Recall = metrics.Recall,
        F1 = metrics.F1,
        Auc = metrics.Auc,
    };
}
