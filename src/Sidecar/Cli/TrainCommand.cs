using System.CommandLine;
using System.Globalization;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Encoders;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Training;
using Spectre.Console;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>
/// <c>slideplugin train</c>: trains an A-MIL model from image- or slide-level labels. On a terminal it shows a live
/// progress bar; otherwise it writes one line per epoch. Ctrl+C stops after the current bag and keeps the checkpoints
/// of the last finished epoch; <c>--resume</c> continues from them.
/// </summary>
internal static class TrainCommand
{
    /// <summary>Exit code of a run stopped by Ctrl+C (128 + SIGINT), as shells report it.</summary>
    public static Command Create(SlidePluginCli.GlobalOptions global)
    {
        _ = global;
        var dataset = new Option<string>("--dataset")
        {
            Description = "Kind of data set: breakhis (folders <mag>/<train|test>/<0|1>), ucsb (UCSB breast TIFFs), " +
                          "mnist-bags (MNIST idx files), slides (CSV of slide,label[,split]), folders (<class>/*.png|jpg|tif, one bag per image).",
            Required = true,
        };
        dataset.AcceptOnlyFromAmong([.. BagDatasetSource.KindNames]);
        var data = new Option<FileSystemInfo>("--data") { Description = "Folder or CSV holding the data set.", Required = true };
        var model = new Option<string>("--model")
        {
            Description = "Model: attention (Ilse et al. A-MIL), gated (gated attention), or clam-sb / clam-mb (CLAM's heads with instance clustering; feature bags: --dataset slides --encoder).",
            DefaultValueFactory = _ => "gated",
        };
        model.AcceptOnlyFromAmong("attention", "gated", "clam-sb", "clam-mb");
        var subtyping = new Option<bool>("--subtyping") { Description = "clam-*: the classes are mutually exclusive subtypes (CLAM's --subtyping): out-of-class instance supervision too." };
        var bagWeight = new Option<float>("--bag-weight") { Description = "clam-*: weight of the bag loss; the instance clustering loss gets the rest.", DefaultValueFactory = _ => 0.7f };
        var kSample = new Option<int>("--k-sample") { Description = "clam-*: most- and least-attended instances per bag for the instance classifiers (CLAM's --B).", DefaultValueFactory = _ => 8 };
        var dropout = new Option<float>("--dropout") { Description = "clam-*: dropout while training.", DefaultValueFactory = _ => 0.25f };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for checkpoints, model card, metrics and plots.", Required = true };
        var epochs = new Option<int>("--epochs") { Description = "Number of epochs.", DefaultValueFactory = _ => 100 };
        var seed = new Option<int>("--seed") { Description = "Random seed (data split, initialisation, shuffling).", DefaultValueFactory = _ => 1 };
        var resume = new Option<bool>("--resume") { Description = "Continue the run stored in --out from its last checkpoint." };
        var folds = new Option<int>("--folds") { Description = "k-fold cross-validation with this many folds (0: one train/validation/test split).", DefaultValueFactory = _ => 0 };
        var validation = new Option<double>("--validation-fraction") { Description = "Fraction of training bags used to pick the best epoch.", DefaultValueFactory = _ => 0.1 };
        var test = new Option<double>("--test-fraction") { Description = "Fraction of bags without a fixed split held out for testing.", DefaultValueFactory = _ => 0.2 };
        var learningRate = new Option<float>("--learning-rate") { Description = "Adam learning rate.", DefaultValueFactory = _ => 5e-4f };
        var weightDecay = new Option<float>("--weight-decay") { Description = "Adam weight decay.", DefaultValueFactory = _ => 1e-4f };
        var augment = new Option<bool>("--augment") { Description = "Random flips and 90° rotations of the patches while training." };
        var mpp = new Option<double?>("--mpp") { Description = "Resolution the model is meant for, µm/px (written in the model card; slides are tiled at it)." };
        var patchSize = new Option<int?>("--patch-size") { Description = "Patch edge in pixels (ucsb, folders, slides: 32)." };
        var maxWhite = new Option<double?>("--max-white") { Description = "folders, ucsb: drop a patch at least this fraction white (pixels ≥ 200 in every channel); 1 keeps every patch. Default 0.75." };
        var magnification = new Option<string?>("--magnification") { Description = "breakhis: train on one magnification folder only (40X, 100X, 200X, 400X)." };
        var slideMpp = new Option<double?>("--slide-mpp") { Description = "slides: resolution of slides that do not record one." };
        var skipUnreadable = new Option<bool>("--skip-unreadable") { Description = "Leave out files that cannot be read (listed in summary.json) instead of stopping." };
        var trainBags = new Option<int>("--train-bags") { Description = "mnist-bags: training bags.", DefaultValueFactory = _ => 200 };
        var testBags = new Option<int>("--test-bags") { Description = "mnist-bags: test bags.", DefaultValueFactory = _ => 1000 };
        var meanBagLength = new Option<double>("--mean-bag-length") { Description = "mnist-bags: mean bag length.", DefaultValueFactory = _ => 10 };
        var encoder = new Option<FileInfo?>("--encoder") { Description = "slides: a tile encoder (NAME.onnx with its card); the model is then a head on the slides' features, as CLAM's." };
        Option<EncoderDevice> device = CliEncoders.DeviceOption();
        var featuresDir = new Option<DirectoryInfo?>("--features-dir") { Description = "slides with --encoder: where SLIDE.features.safetensors are made and reused (default: <out>/features)." };
        var name = new Option<string>("--name") { Description = "Model name in the card.", DefaultValueFactory = _ => "amil" };
        var limitations = new Option<string?>("--limitations") { Description = "Intended use and known limits, for the model card." };

        var command = new Command("train", "Train an attention-based MIL model from image- or slide-level labels.");
        foreach (Option option in new Option[]
                 {
                     dataset, data, model, output, epochs, seed, resume, folds, validation, test, learningRate, weightDecay, augment, mpp,
                     patchSize, maxWhite, magnification, slideMpp, skipUnreadable, encoder, device, featuresDir, trainBags, testBags, meanBagLength, name, limitations,
                     subtyping, bagWeight, kSample, dropout,
                 })
        {
            command.Options.Add(option);
        }

        command.SetAction((parseResult, cancellationToken) =>
        {
            TextWriter stdout = parseResult.InvocationConfiguration.Output, stderr = parseResult.InvocationConfiguration.Error;
            if (!NativeCheck.Passes(stderr, out _))
            {
                return Task.FromResult(ExitCodes.MissingNativeDependency);
            }

            string architecture = parseResult.GetRequiredValue(model);
            var options = new TrainingOptions
            {
                Attention = architecture == "attention" ? MilAttention.Attention : MilAttention.Gated,
                Variant = architecture switch { "clam-sb" => MilVariant.ClamSb, "clam-mb" => MilVariant.ClamMb, _ => MilVariant.Ilse },
                Subtyping = parseResult.GetValue(subtyping),
                BagWeight = parseResult.GetValue(bagWeight),
                InstanceSamples = parseResult.GetValue(kSample),
                Dropout = parseResult.GetValue(dropout),
                Epochs = parseResult.GetValue(epochs),
                Seed = (ulong)Math.Max(0, parseResult.GetValue(seed)),
                Resume = parseResult.GetValue(resume),
                ValidationFraction = parseResult.GetValue(validation),
                TestFraction = parseResult.GetValue(test),
                LearningRate = parseResult.GetValue(learningRate),
                WeightDecay = parseResult.GetValue(weightDecay),
                Augment = parseResult.GetValue(augment),
                Mpp = parseResult.GetValue(mpp),
                ModelName = parseResult.GetRequiredValue(name),
            };
            if (parseResult.GetValue(limitations) is { Length: > 0 } limits)
            {
                options = options with { Limitations = limits };
            }

            TileEncoder? tileEncoder = null;
            if (parseResult.GetValue(encoder) is { } encoderFile)
            {
                if (!CliEncoders.TryLoad(encoderFile, parseResult.GetValue(device), stderr, out TileEncoder loaded))
                {
                    return Task.FromResult(ExitCodes.Failure);
                }

                tileEncoder = loaded;
            }

            try
            {
                options.Validate();
                if (options.Variant != MilVariant.Ilse && tileEncoder is null)
                {
                    throw new ArgumentException($"--model {architecture} trains a head on tile features: give --dataset slides with --encoder NAME.onnx.");
                }

                var source = new BagDatasetSource
                {
                    Kind = BagDatasetSource.ParseKind(parseResult.GetRequiredValue(dataset)),
                    Path = parseResult.GetRequiredValue(data).FullName,
                    PatchSize = parseResult.GetValue(patchSize),
                    Magnification = parseResult.GetValue(magnification),
                    Mpp = options.Mpp,
                    SlideMpp = parseResult.GetValue(slideMpp),
                    MaxWhite = parseResult.GetValue(maxWhite),
                    Policy = parseResult.GetValue(skipUnreadable) ? UnreadableFilePolicy.Skip : UnreadableFilePolicy.Fail,
                    Encoder = tileEncoder,
                    FeaturesFolder = parseResult.GetValue(featuresDir)?.FullName ?? Path.Combine(parseResult.GetRequiredValue(output).FullName, "features"),
                    MnistBags = new MnistBagsOptions
                    {
                        TrainBags = parseResult.GetValue(trainBags),
                        TestBags = parseResult.GetValue(testBags),
                        MeanBagLength = parseResult.GetValue(meanBagLength),
                        Seed = options.Seed,
                    },
                };
                BagDataset bags = source.Open();
                foreach (SkippedFile skipped in bags.Skipped)
                {
                    stderr.WriteLine($"slideplugin: skipped {skipped.Path}: {skipped.Reason}");
                }

                return Task.FromResult(Run(bags, options, parseResult.GetValue(folds), parseResult.GetRequiredValue(output).FullName, stdout, cancellationToken));
            }
            catch (Exception e) when (e is DatasetException or ArgumentException or InvalidOperationException or IOException)
            {
                stderr.WriteLine($"slideplugin: {e.Message}");
                return Task.FromResult(e is ArgumentException ? ExitCodes.Usage : ExitCodes.Failure);
            }
            finally
            {
                tileEncoder?.Dispose();
            }
        });
        return command;
    }

    private static int Run(BagDataset bags, TrainingOptions options, int folds, string output, TextWriter stdout, CancellationToken cancellationToken)
    {
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Training {(options.Variant switch { MilVariant.ClamSb => "CLAM-SB", MilVariant.ClamMb => "CLAM-MB", _ => options.Attention == MilAttention.Gated ? "gated attention MIL" : "attention MIL" })} on {bags.Items.Count} bags: {bags.Description}"));
        bool interactive = ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        bool cancelled;
        if (folds >= 2)
        {
            CrossValidationResult result = interactive
                ? WithProgressBar(progress => CrossValidation.Run(bags, options, folds, output, (trainer, fold) => progress(trainer, $"fold {fold + 1}/{folds}"), cancellationToken))
                : CrossValidation.Run(bags, options, folds, output, (trainer, fold) => WriteEpochLines(trainer, stdout, $"fold {fold + 1}/{folds} "), cancellationToken);
            cancelled = result.Cancelled;
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{folds}-fold cross-validation: test accuracy {result.Accuracy.Mean:0.000} ± {result.Accuracy.Std:0.000}, AUC {result.Auc.Mean:0.000} ± {result.Auc.Std:0.000} ({Path.Combine(output, "cv-summary.json")})"));
        }
        else
        {
            var trainer = new MilTrainer(bags, options, output);
            TrainingResult result = interactive
                ? WithProgressBar(progress => { progress(trainer, "training"); return trainer.Run(cancellationToken); })
                : RunWithLines(trainer, stdout, cancellationToken);
            cancelled = result.Status == TrainingStatus.Cancelled;
            if (result.Test is { Count: > 0 } metrics)
            {
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"Test ({metrics.Count} bags, best epoch {result.BestEpoch}): accuracy {metrics.Accuracy:0.000}, AUC {metrics.Auc:0.000}, F1 {metrics.F1:0.000}; model {result.BestModelPath}"));
            }
            else if (result.Status == TrainingStatus.Completed)
            {
                stdout.WriteLine($"No test bags were held out (best epoch {result.BestEpoch}); model {result.BestModelPath}");
            }
        }

        if (cancelled)
        {
            stdout.WriteLine($"Stopped: the checkpoints in {output} are those of the last finished epoch; continue with --resume.");
            return ExitCodes.Interrupted;
        }

        return ExitCodes.Success;
    }

    private static TrainingResult RunWithLines(MilTrainer trainer, TextWriter stdout, CancellationToken cancellationToken)
    {
        WriteEpochLines(trainer, stdout, "");
        return trainer.Run(cancellationToken);
    }

    /// <summary>One line per epoch, key=value, for logs and pipes.</summary>
    private static void WriteEpochLines(MilTrainer trainer, TextWriter stdout, string prefix) =>
        trainer.EpochFinished += e => stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{prefix}epoch={e.Epoch} train_loss={e.Train.Loss:0.0000} train_acc={e.Train.Accuracy:0.000} val_loss={e.Validation.Loss:0.0000} val_acc={e.Validation.Accuracy:0.000} val_auc={e.Validation.Auc:0.000} seconds={e.Seconds:0.0}{(e.IsBest ? " best" : "")}"));

    /// <summary>Runs <paramref name="work"/> under a Spectre.Console progress bar that <paramref name="work"/> attaches trainers to.</summary>
    private static T WithProgressBar<T>(Func<Action<MilTrainer, string>, T> work) =>
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(context => work((trainer, label) =>
            {
                ProgressTask task = context.AddTask(label);
                trainer.BagTrained += p =>
                {
                    task.MaxValue = (double)p.Epochs * p.Bags;
                    task.Value = ((double)(p.Epoch - 1) * p.Bags) + p.Bag;
                    task.Description = string.Create(CultureInfo.InvariantCulture, $"{label} epoch {p.Epoch}/{p.Epochs} loss {p.MeanLoss:0.000}");
                };
                trainer.EpochFinished += e => AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                    $"{Markup.Escape(label)} epoch {e.Epoch}: train loss {e.Train.Loss:0.000}, validation AUC {e.Validation.Auc:0.000}{(e.IsBest ? " [green]best[/]" : "")}"));
            }));
}
