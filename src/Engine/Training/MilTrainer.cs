using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Optim;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Training;

/// <summary>
/// Trains an attention-MIL model on a <see cref="BagDataset"/>, one bag per Adam step, and never loses a run.
/// </summary>
/// <remarks>
/// <para>Output folder: <c>run.safetensors</c> (everything a resume needs: weights, Adam moments, the random
/// generator, the epoch and the history, in one atomically renamed file), <c>model-best</c> and <c>model-last</c>
/// (<c>.safetensors</c> + <c>.json</c> card), <c>metrics.csv</c>, <c>curves.png</c>, <c>split.json</c> and, at the
/// end, <c>summary.json</c>. All are written after each epoch, so a crash or SIGINT loses at most the epoch running.</para>
/// <para>Resuming restores the exact state after the last finished epoch: the continued run computes what an
/// uninterrupted one would have, bit for bit (the engine is deterministic for a given seed).</para>
/// </remarks>
public sealed class MilTrainer
{
    /// <summary>File of the resumable state.</summary>
    public const string RunFile = "run.safetensors";

    private const string StateKey = "slideplugin.run";
    private const string ModelPrefix = "model.";
    private const string OptimizerPrefix = "optimizer.";

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        WriteIndented = true,
    };

    private readonly BagDataset _dataset;
    private readonly TrainingOptions _options;
    private readonly string _output;

    /// <summary>A trainer for <paramref name="dataset"/> writing into <paramref name="outputDirectory"/>.</summary>
    public MilTrainer(BagDataset dataset, TrainingOptions options, string outputDirectory)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(outputDirectory);
        options.Validate();
        if (options.Variant != MilVariant.Ilse && dataset.Input != MilInput.Features)
        {
            throw new ArgumentException($"A CLAM head ({options.Variant}) trains on feature bags: slides with a tile encoder (--dataset slides --encoder NAME.onnx), not on {dataset.Input.ToString().ToLowerInvariant()}.");
        }

        _dataset = dataset;
        _options = options;
        _output = Path.GetFullPath(outputDirectory);
    }

    /// <summary>Called after every training bag.</summary>
    public event Action<TrainingProgress>? BagTrained;

    /// <summary>Called after every epoch, once its checkpoints are on disk.</summary>
    public event Action<EpochMetrics>? EpochFinished;

    /// <summary>
    /// The model this trainer builds for its data set. A CLAM head has CLAM's "small" sizes (L 512, D 256) and, as in CLAM,
    /// a softmax over K logits even for two classes.
    /// </summary>
    public AttentionMilSpec Spec
    {
        get
        {
            bool clam = _options.Variant != MilVariant.Ilse;
            var spec = new AttentionMilSpec
            {
                Attention = _options.Attention,
                Input = _dataset.Input,
                FeatureSize = _dataset.FeatureSize,
                Channels = _dataset.Channels,
                PatchSize = _dataset.PatchSize,
                Head = _dataset.Classes.Count == 2 && !clam ? MilHead.Binary : MilHead.Multiclass,
                ClassCount = _dataset.Classes.Count,
            };
            return !clam ? spec : spec with
            {
                Variant = _options.Variant,
                EmbeddingSize = 512,
                AttentionSize = 256,
                Dropout = _options.Dropout ?? 0.25f,
                InstanceSamples = _options.InstanceSamples,
                BagWeight = _options.BagWeight,
                Subtyping = _options.Subtyping,
            };
        }
    }

    /// <summary>Trains on a train/validation/test split made from the options' fractions and seed.</summary>
    public TrainingResult Run(CancellationToken cancellationToken = default) =>
        Run(DataSplit.Create(_dataset.Items, _options.ValidationFraction, _options.TestFraction, _options.Seed), cancellationToken);

    /// <summary>Trains on <paramref name="split"/>. Cancellation stops between bags; the files stay those of the last finished epoch.</summary>
    /// <exception cref="InvalidOperationException">The folder holds a run and resume was not asked for, or the stored run does not match.</exception>
    public TrainingResult Run(DataSplit split, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(split);
        if (split.Train.Count == 0)
        {
            throw new ArgumentException("The split has no training bags.", nameof(split));
        }

        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(_output);
        AttentionMilSpec spec = Spec;
        var random = new TensorRandom(_options.Seed);
        var model = new AttentionMil(spec, random);
        var adam = new Adam(model.Parameters(), _options.LearningRate, _options.Beta1, _options.Beta2, weightDecay: _options.WeightDecay);
        string splitText = SplitJson(split);
        var state = new RunState { SplitSha256 = Sha256(_dataset.Description + "\n" + splitText), Spec = spec };
        string runPath = Path.Combine(_output, RunFile);
        if (File.Exists(runPath))
        {
            if (!_options.Resume)
            {
                throw new InvalidOperationException($"'{_output}' already holds a training run ({RunFile}); resume it or choose another output folder.");
            }

            state = LoadState(runPath, model, adam, random, state);
        }

        AtomicFile.WriteAllText(Path.Combine(_output, "split.json"), splitText);
        var history = state.History;
        var status = TrainingStatus.Completed;
        for (int epoch = state.EpochsDone + 1; epoch <= _options.Epochs; epoch++)
        {
            var epochClock = Stopwatch.StartNew();
            // A fresh permutation of the sorted training bags each epoch (as a shuffling DataLoader): it depends only on the
            // generator's state, which the checkpoint keeps, so a resumed run visits the bags in the same order.
            List<int> order = [.. split.Train];
            random.Shuffle(order);
            ClassificationMetrics? train = TrainEpoch(model, adam, order, random, epoch, cancellationToken);
            if (train is null)
            {
                status = TrainingStatus.Cancelled;
                break;
            }

            ClassificationMetrics validation = Evaluate(model, split.Validation);
            bool best = IsBetter(validation, history.Count == 0 ? null : history[state.BestEpoch - 1].Validation) || split.Validation.Count == 0;
            var metrics = new EpochMetrics(epoch, train, validation, epochClock.Elapsed.TotalSeconds, best);
            history.Add(metrics);
            state = state with { EpochsDone = epoch, BestEpoch = best ? epoch : state.BestEpoch, History = history };
            SaveEpoch(model, adam, random, state, best);
            EpochFinished?.Invoke(metrics);
        }

        ClassificationMetrics? test = null;
        string? bestPath = state.BestEpoch > 0 ? Path.Combine(_output, "model-best.safetensors") : null;
        if (status == TrainingStatus.Completed && bestPath is not null)
        {
            (AttentionMil bestModel, ModelCard bestCard) = ModelCheckpoint.Load(bestPath);
            test = Evaluate(bestModel, split.Test);
            // Only the card changes (its weights hash stays true): the weights file is not written again.
            AtomicFile.WriteAllText(ModelCheckpoint.CardPathFor(bestPath), (bestCard with { Metrics = MetricsOf(test, history[state.BestEpoch - 1]) }).ToJson());
        }

        var result = new TrainingResult(status, _output, state.EpochsDone, bestPath,
            state.EpochsDone > 0 ? Path.Combine(_output, "model-last.safetensors") : null,
            state.BestEpoch, test, history, split, clock.Elapsed.TotalSeconds);
        AtomicFile.WriteAllText(Path.Combine(_output, "summary.json"), SummaryJson(result));
        return result;
    }

    /// <summary>One pass over the training bags; null when cancelled (the partial epoch is not kept).</summary>
    private ClassificationMetrics? TrainEpoch(AttentionMil model, Adam adam, List<int> order, TensorRandom random, int epoch, CancellationToken cancellationToken)
    {
        model.Train();
        var labels = new List<int>(order.Count);
        var probabilities = new List<float[]>(order.Count);
        double lossSum = 0;
        for (int step = 0; step < order.Count; step++)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return null;
            }

            int index = order[step];
            int label = _dataset.Items[index].Label;
            using Tensor bag = _dataset.Load(index, _options.Augment ? random : null);   // [N, C, P, P]
            adam.ZeroGrad();
            MilOutput output = model.Forward(bag);
            using Tensor loss = model.Loss(output, label);                               // [1]
            lossSum += loss.Data[0];
            probabilities.Add(output.Probabilities.ToArray());
            labels.Add(label);
            loss.Backward();
            adam.Step();
            output.Dispose();
            BagTrained?.Invoke(new TrainingProgress(epoch, _options.Epochs, step + 1, order.Count, lossSum / (step + 1)));
        }

        return ClassificationMetrics.Compute(labels, probabilities, lossSum / order.Count);
    }

    /// <summary>Scores <paramref name="indices"/> without gradients: mean loss and metrics.</summary>
    public ClassificationMetrics Evaluate(AttentionMil model, IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(indices);
        model.Eval();
        var labels = new List<int>(indices.Count);
        var probabilities = new List<float[]>(indices.Count);
        double lossSum = 0;
        using (GradMode.NoGrad())
        {
            foreach (int index in indices)
            {
                int label = _dataset.Items[index].Label;
                using Tensor bag = _dataset.Load(index);
                MilOutput output = model.Forward(bag);
                using Tensor loss = model.Loss(output, label);
                lossSum += loss.Data[0];
                probabilities.Add(output.Probabilities.ToArray());
                labels.Add(label);
                output.Dispose();
            }
        }

        return ClassificationMetrics.Compute(labels, probabilities, indices.Count == 0 ? double.NaN : lossSum / indices.Count);
    }

    /// <summary>Higher validation AUC wins; equal (or undefined) AUC falls back to lower validation loss.</summary>
    private static bool IsBetter(ClassificationMetrics candidate, ClassificationMetrics? best)
    {
        if (best is null)
        {
            return true;
        }

        if (!double.IsNaN(candidate.Auc) && !double.IsNaN(best.Auc) && candidate.Auc != best.Auc)
        {
            return candidate.Auc > best.Auc;
        }

        return candidate.Loss < best.Loss;
    }

    /// <summary>Called with each file's name before SaveEpoch writes it (tests stop the run there, as a kill would).</summary>
    internal Action<string>? BeforeEpochWrite { get; set; }

    private void SaveEpoch(AttentionMil model, Adam adam, TensorRandom random, RunState state, bool best)
    {
        // What the user reads first, the resume state last: a run killed between two of these writes resumes from the
        // epoch before and writes this epoch's files again, the same bits (training is deterministic), so the best
        // model, the metrics and the summary can never disagree with the state they are resumed from.
        ModelCard card = CardFor(state);
        Write("model-last.safetensors", path => ModelCheckpoint.Save(path, model, card));
        if (best)
        {
            Write("model-best.safetensors", path => ModelCheckpoint.Save(path, model, card));
        }

        Write("metrics.csv", path => AtomicFile.WriteAllText(path, MetricsCsv(state.History)));
        Write("curves.png", path => AtomicFile.WriteAllBytes(path, TrainingCurves.Render(state.History)));

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach ((string name, Tensor value) in model.StateDict())
        {
            tensors[ModelPrefix + name] = value;
        }

        var moments = new List<Tensor>();
        foreach ((string name, float[] value) in adam.StateDict())
        {
            Tensor tensor = Tensor.FromData(value, value.Length);
            moments.Add(tensor);
            tensors[OptimizerPrefix + name] = tensor;
        }

        RunState saved = state with { RandomState = [.. random.State.Select(v => v.ToString("X16", CultureInfo.InvariantCulture))] };
        try
        {
            Write(RunFile, path => SafeTensors.Save(path, tensors, new Dictionary<string, string> { [StateKey] = JsonSerializer.Serialize(saved, JsonOptions) }));
        }
        finally
        {
            moments.ForEach(m => m.Dispose());
        }
    }

    private void Write(string name, Action<string> write)
    {
        BeforeEpochWrite?.Invoke(name);
        write(Path.Combine(_output, name));
    }

    private static RunState LoadState(string runPath, AttentionMil model, Adam adam, TensorRandom random, RunState expected)
    {
        SafeTensorsFile file = SafeTensors.Load(runPath);
        if (!file.Metadata.TryGetValue(StateKey, out string? json))
        {
            throw new InvalidOperationException($"'{runPath}' is not a training run (no '{StateKey}' metadata).");
        }

        RunState state = JsonSerializer.Deserialize<RunState>(json, JsonOptions) ?? throw new InvalidOperationException($"'{runPath}' has an empty run state.");
        if (state.Spec != expected.Spec)
        {
            throw new InvalidOperationException($"'{runPath}' trained a {state.Spec.ArchitectureName} on other inputs; resume with the same model and data set.");
        }

        if (state.SplitSha256 != expected.SplitSha256)
        {
            throw new InvalidOperationException($"'{runPath}' was trained on other data or another split of the bags; resume with the same data, seed and fractions.");
        }

        var weights = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var optimizer = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (string name in file.Entries.Keys)
        {
            if (name.StartsWith(ModelPrefix, StringComparison.Ordinal))
            {
                weights[name[ModelPrefix.Length..]] = file.ToTensor(name);
            }
            else if (name.StartsWith(OptimizerPrefix, StringComparison.Ordinal))
            {
                using Tensor values = file.ToTensor(name);
                optimizer[name[OptimizerPrefix.Length..]] = values.ToArray();
            }
        }

        model.LoadStateDict(weights);
        foreach (Tensor weight in weights.Values)
        {
            weight.Dispose();
        }

        adam.LoadStateDict(optimizer);
        random.State = [.. state.RandomState.Select(v => ulong.Parse(v, NumberStyles.HexNumber, CultureInfo.InvariantCulture))];
        return state;
    }

    private ModelCard CardFor(RunState state) => new()
    {
        Name = _options.ModelName,
        Classes = _dataset.Classes,
        Mpp = _options.Mpp,
        Magnification = _options.Magnification,
        InputMean = _dataset.Normalization.Mean,
        InputStd = _dataset.Normalization.Std,
        EncoderName = _dataset.Encoder?.Name,
        EncoderSha256 = _dataset.Encoder?.Sha256,
        TrainingData = $"{_dataset.Description}; seed {_options.Seed}, {_options.Epochs} epochs, Adam lr {_options.LearningRate.ToString(CultureInfo.InvariantCulture)}, weight decay {_options.WeightDecay.ToString(CultureInfo.InvariantCulture)}{(_options.Augment ? ", flips and rotations" : "")}",
        Metrics = MetricsOf(null, state.History[^1]),
        Limitations = _options.Limitations,
    };

    /// <summary>The card's metrics: the epoch's training metrics (from the steps as they ran), validation and test where there are bags.</summary>
    private static Dictionary<string, double> MetricsOf(ClassificationMetrics? test, EpochMetrics epoch)
    {
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
        void Add(string prefix, ClassificationMetrics m)
        {
            foreach ((string name, double value) in new[] { ("accuracy", m.Accuracy), ("auc", m.Auc), ("f1", m.F1), ("precision", m.Precision), ("recall", m.Recall), ("loss", m.Loss) })
            {
                if (double.IsFinite(value))
                {
                    metrics[$"{prefix}_{name}"] = Math.Round(value, 6);
                }
            }
        }

        Add("train", epoch.Train);
        Add("validation", epoch.Validation);
        if (test is not null)
        {
            Add("test", test);
        }

        return metrics;
    }

    /// <summary>The per-epoch metrics as CSV (invariant culture; empty cells where a metric is undefined).</summary>
    public static string MetricsCsv(IReadOnlyList<EpochMetrics> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var csv = new StringBuilder("epoch,train_loss,train_accuracy,train_auc,val_loss,val_accuracy,val_precision,val_recall,val_f1,val_auc,seconds,best\n");
        foreach (EpochMetrics e in history)
        {
            string[] cells =
            [
                e.Epoch.ToString(CultureInfo.InvariantCulture), Cell(e.Train.Loss), Cell(e.Train.Accuracy), Cell(e.Train.Auc),
                Cell(e.Validation.Loss), Cell(e.Validation.Accuracy), Cell(e.Validation.Precision), Cell(e.Validation.Recall),
                Cell(e.Validation.F1), Cell(e.Validation.Auc), e.Seconds.ToString("0.###", CultureInfo.InvariantCulture), e.IsBest ? "1" : "0",
            ];
            csv.Append(string.Join(',', cells)).Append('\n');
        }

        return csv.ToString();
    }

    private static string Cell(double value) => double.IsFinite(value) ? value.ToString("0.######", CultureInfo.InvariantCulture) : "";

    private string SplitJson(DataSplit split)
    {
        string[] Ids(IReadOnlyList<int> indices) => [.. indices.Select(i => _dataset.Items[i].Id)];
        return JsonSerializer.Serialize(new { train = Ids(split.Train), validation = Ids(split.Validation), test = Ids(split.Test) }, JsonOptions);
    }

    private string SummaryJson(TrainingResult result) => JsonSerializer.Serialize(new
    {
        status = result.Status,
        data = _dataset.Description,
        classes = _dataset.Classes,
        skipped_files = _dataset.Skipped,
        model = Spec.ArchitectureName,
        seed = _options.Seed,
        epochs = _options.Epochs,
        epochs_done = result.EpochsDone,
        best_epoch = result.BestEpoch,
        bags = new { train = result.Split.Train.Count, validation = result.Split.Validation.Count, test = result.Split.Test.Count },
        best_model = result.BestModelPath,
        last_model = result.LastModelPath,
        test = result.Test,
        best_validation = result.BestEpoch > 0 ? result.History[result.BestEpoch - 1].Validation : null,
        seconds = Math.Round(result.Seconds, 3),
    }, JsonOptions);

    private static string Sha256(string text) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    /// <summary>What <see cref="RunFile"/> records besides tensors.</summary>
    private sealed record RunState
    {
        public int EpochsDone { get; init; }

        public int BestEpoch { get; init; }

        public string SplitSha256 { get; init; } = "";

        public AttentionMilSpec Spec { get; init; } = new();

        public IReadOnlyList<string> RandomState { get; init; } = [];

        public List<EpochMetrics> History { get; init; } = [];
    }
}
