using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Engine.Training;
using SlidePlugin.Tests;

namespace SlidePlugin.Benchmarks.Mil;

/// <summary>
/// The paper results side by side: our trainer and a PyTorch run of the same architecture (tests/reference/amil_train.py)
/// on the same bags, the same split and the same normalised inputs (exported once to safetensors), one after the other.
/// <list type="bullet">
/// <item><c>mnist</c>: MNIST-bags, mean length 10, 200 training and 1000 test bags, one run per seed; attention MIL, Ilse's
/// reference-code settings (lr 5e-4, wd 1e-4), model after the last epoch scored on the test bags.</item>
/// <item><c>ucsb</c>: UCSB breast, k-fold cross-validation (stratified, seeded); gated attention MIL with Ilse's
/// histology settings (lr 1e-4, wd 5e-4), 32x32 patches, inputs in [−1, 1].</item>
/// </list>
/// Not a test: it takes minutes to an hour; run it and record the table in BENCHMARKS.md.
/// </summary>
internal static class ReproductionBenchmark
{
    private sealed record Row(string Run, ClassificationMetrics Ours, double OursSeconds, JsonElement Torch);

    public static async Task<int> RunAsync(string experiment, int runs, int epochs, int threads, int repeats = 1)
    {
        EngineThreads.Set(threads);
        string scratch = Directory.CreateTempSubdirectory("slideplugin-reproduce").FullName;
        var rows = new List<Row>();
        string journalPath = Path.Combine(Journal.Folder, $"{experiment}-{runs}runs-{repeats}x-{epochs}epochs-{threads}threads.jsonl");
        Console.WriteLine($"A-MIL reproduction: {experiment}, {runs} runs{(repeats > 1 ? $" x {repeats} repetitions" : "")}, {epochs} epochs, {threads} threads on both sides");
        try
        {
            if (experiment == "mnist")
            {
                Journal? journal = null;
                for (int seed = 1; seed <= runs; seed++)
                {
                    var bags = new MnistBags(TestData.Path("mnist"), new MnistBagsOptions { Seed = (ulong)seed });
                    var options = new TrainingOptions
                    {
                        Attention = MilAttention.Attention, Epochs = epochs, Seed = (ulong)seed, ValidationFraction = 0, TestFraction = 0,
                    };
                    journal ??= Journal.Open(journalPath, bags, DataSplit.Create(bags.Items, 0, 0, (ulong)seed), options, scratch);
                    rows.Add(await journal.GetOrRunAsync($"seed {seed}", name =>
                        CompareAsync(name, bags, DataSplit.Create(bags.Items, 0, 0, (ulong)seed), options, Path.Combine(scratch, $"seed-{seed}"), threads)));
                    Print(rows[^1]);
                }
            }
            else
            {
                BagDataset bags = ImageFolderBags.Ucsb(TestData.Path("ucsb-breast"));
                var options = new TrainingOptions
                {
                    Attention = MilAttention.Gated, Epochs = epochs, LearningRate = 1e-4f, WeightDecay = 5e-4f, ValidationFraction = 0, Mpp = 0.5,
                };
                string exported = Path.Combine(scratch, "bags.safetensors");
                Export(bags, exported);
                Journal journal = Journal.Open(journalPath, bags, DataSplit.CreateFold(bags.Items, runs, 0, 0, options.Seed), options, scratch);
                for (int repeat = 0; repeat < repeats; repeat++)
                {
                    // Each repetition: new folds and new initialisations (seed 1, 2, ...), as the paper repeats its cross-validation.
                    TrainingOptions repeated = options with { Seed = options.Seed + (ulong)repeat };
                    for (int fold = 0; fold < runs; fold++)
                    {
                        DataSplit split = DataSplit.CreateFold(bags.Items, runs, fold, 0, repeated.Seed);
                        string name = repeats > 1 ? $"repetition {repeat + 1} fold {fold + 1}/{runs}" : $"fold {fold + 1}/{runs}";
                        int run = (repeat * runs) + fold + 1;
                        rows.Add(await journal.GetOrRunAsync(name, _ => CompareAsync(name, bags, split, repeated, Path.Combine(scratch, $"run-{run:00}"), threads, exported)));
                        Print(rows[^1]);
                    }
                }
            }

            Summarise(rows, runs);
            return 0;
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>
    /// Finished runs, one JSON line each, so a reproduction that takes hours can stop and go on later. Runs are
    /// deterministic, so a run read back is the run that would be made again, as long as the numerics are the same: each
    /// line records a fingerprint (the exact losses of one short canary training with our engine, and the SHA-256 of the
    /// PyTorch reference scripts), and lines with another fingerprint are run again. A line cut short by a kill is ignored.
    /// </summary>
    private sealed class Journal
    {
        private static readonly string[] ReferenceScripts = ["amil_train.py", "torch_reference.py"];
        private readonly Dictionary<string, Row> _rows = [];
        private readonly string _fingerprint;

        private Journal(string path, string fingerprint)
        {
            Path = path;
            _fingerprint = fingerprint;
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
            foreach (string line in File.Exists(path) ? File.ReadAllLines(path) : [])
            {
                try
                {
                    using JsonDocument entry = JsonDocument.Parse(line);
                    JsonElement root = entry.RootElement;
                    if (!root.TryGetProperty("fingerprint", out JsonElement recorded) || recorded.GetString() != fingerprint)
                    {
                        Stale++;
                        continue;
                    }

                    var row = new Row(root.GetProperty("run").GetString()!, root.GetProperty("ours").Deserialize<ClassificationMetrics>()!,
                        root.GetProperty("ours_seconds").GetDouble(), root.GetProperty("torch").Clone());
                    _rows[row.Run] = row;
                }
                catch (JsonException)
                {
                }
            }
        }

        /// <summary>
        /// Opens the journal at <paramref name="path"/> after the canary: one epoch of our trainer on the first run's
        /// data (seconds), whose train and test losses change with any change to the engine's numerics.
        /// </summary>
        public static Journal Open(string path, BagDataset bags, DataSplit split, TrainingOptions options, string scratch)
        {
            TrainingResult canary = new MilTrainer(bags, options with { Epochs = 1 }, System.IO.Path.Combine(scratch, "canary")).Run(split);
            string scripts = string.Concat(ReferenceScripts.Select(script =>
                Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(System.IO.Path.Combine(AppContext.BaseDirectory, script))))[..16]));
            string fingerprint = string.Create(CultureInfo.InvariantCulture, $"{canary.History[0].Train.Loss:R}/{canary.Test!.Loss:R}/{scripts}");
            var journal = new Journal(path, fingerprint);
            Console.WriteLine($"Journal: {path} (fingerprint {fingerprint}): {journal.Count} runs there are not run again, {journal.Stale} of other numerics are; delete it to start over");
            Console.WriteLine("| run | ours AUC | ours error | ours s | PyTorch AUC | PyTorch error | PyTorch s |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
            return journal;
        }

        /// <summary>Where journals are kept: artifacts/reproduce under the working folder (git-ignored).</summary>
        public static string Folder => System.IO.Path.Combine(Environment.CurrentDirectory, "artifacts", "reproduce");

        public string Path { get; }

        public int Count => _rows.Count;

        /// <summary>Lines of other numerics, not reused.</summary>
        public int Stale { get; private set; }

        public async Task<Row> GetOrRunAsync(string name, Func<string, Task<Row>> run)
        {
            if (_rows.TryGetValue(name, out Row? done))
            {
                return done;
            }

            Row row = await run(name);
            string line = JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["run"] = row.Run,
                ["fingerprint"] = _fingerprint,
                ["ours"] = row.Ours,
                ["ours_seconds"] = row.OursSeconds,
                ["torch"] = row.Torch,
            });
            await File.AppendAllTextAsync(Path, line + "\n");
            _rows[name] = row;
            return row;
        }
    }

    private static async Task<Row> CompareAsync(string name, BagDataset bags, DataSplit split, TrainingOptions options, string folder, int threads, string? exported = null)
    {
        Directory.CreateDirectory(folder);
        var trainer = new MilTrainer(bags, options, Path.Combine(folder, "ours"));
        TrainingResult ours = trainer.Run(split);

        if (exported is null)
        {
            exported = Path.Combine(folder, "bags.safetensors");
            Export(bags, exported);
        }

        string settings = Path.Combine(folder, "settings.json");
        await File.WriteAllTextAsync(settings, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["spec"] = trainer.Spec,
            ["train"] = split.Train,
            ["test"] = split.Test,
            ["epochs"] = options.Epochs,
            ["learning_rate"] = options.LearningRate,
            ["weight_decay"] = options.WeightDecay,
            ["seed"] = options.Seed,
            ["threads"] = threads,
        }, ModelCard.JsonOptions));
        using JsonDocument torch = await ReferencePython.RunAsync("amil_train.py", exported, settings);
        return new Row(name, ours.Test!, ours.Seconds, torch.RootElement.Clone());
    }

    /// <summary>Every bag as the float tensor our trainer feeds (normalised, no augmentation), and the labels.</summary>
    private static void Export(BagDataset bags, string path)
    {
        var tensors = new Dictionary<string, Tensor>();
        try
        {
            for (int i = 0; i < bags.Items.Count; i++)
            {
                tensors[$"bag.{i}"] = bags.Load(i);
            }

            tensors["labels"] = Tensor.FromData([.. bags.Items.Select(item => (float)item.Label)], bags.Items.Count);
            SafeTensors.Save(path, tensors);
        }
        finally
        {
            foreach (Tensor tensor in tensors.Values)
            {
                tensor.Dispose();
            }
        }
    }

    private static void Print(Row row) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {row.Run} | {row.Ours.Auc:0.000} | {1 - row.Ours.Accuracy:0.000} | {row.OursSeconds:0} | {row.Torch.GetProperty("test_auc").GetDouble():0.000} | {row.Torch.GetProperty("test_error").GetDouble():0.000} | {row.Torch.GetProperty("seconds").GetDouble():0} |"));

    private static void Summarise(IReadOnlyList<Row> rows, int runsPerRepetition)
    {
        FoldStatistic oursAuc = FoldStatistic.Of(rows.Select(r => r.Ours.Auc));
        FoldStatistic oursAccuracy = FoldStatistic.Of(rows.Select(r => r.Ours.Accuracy));
        FoldStatistic torchAuc = FoldStatistic.Of(rows.Select(r => r.Torch.GetProperty("test_auc").GetDouble()));
        FoldStatistic torchAccuracy = FoldStatistic.Of(rows.Select(r => r.Torch.GetProperty("test_accuracy").GetDouble()));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| mean ± std | {oursAuc.Mean:0.000} ± {oursAuc.Std:0.000} | {1 - oursAccuracy.Mean:0.000} ± {oursAccuracy.Std:0.000} | {rows.Sum(r => r.OursSeconds):0} | {torchAuc.Mean:0.000} ± {torchAuc.Std:0.000} | {1 - torchAccuracy.Mean:0.000} ± {torchAccuracy.Std:0.000} | {rows.Sum(r => r.Torch.GetProperty("seconds").GetDouble()):0} |"));
        if (rows.Count > runsPerRepetition)
        {
            // As papers report repeated cross-validation: each repetition's mean over its folds, then the mean and std of
            // those means (the spread between repetitions, not between folds).
            Row[][] repetitions = [.. rows.Chunk(runsPerRepetition)];
            FoldStatistic OverRepetitions(Func<Row, double> metric) => FoldStatistic.Of(repetitions.Select(r => FoldStatistic.Of(r.Select(metric)).Mean));
            FoldStatistic oursAucs = OverRepetitions(r => r.Ours.Auc), oursAccuracies = OverRepetitions(r => r.Ours.Accuracy);
            FoldStatistic torchAucs = OverRepetitions(r => r.Torch.GetProperty("test_auc").GetDouble());
            FoldStatistic torchAccuracies = OverRepetitions(r => r.Torch.GetProperty("test_accuracy").GetDouble());
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {repetitions.Length} repetitions: mean ± std of their means | {oursAucs.Mean:0.000} ± {oursAucs.Std:0.000} | {1 - oursAccuracies.Mean:0.000} ± {oursAccuracies.Std:0.000} | | {torchAucs.Mean:0.000} ± {torchAucs.Std:0.000} | {1 - torchAccuracies.Mean:0.000} ± {torchAccuracies.Std:0.000} | |"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"AUC ours − PyTorch: {oursAuc.Mean - torchAuc.Mean:+0.000;-0.000}; accuracy ours − PyTorch: {oursAccuracy.Mean - torchAccuracy.Mean:+0.000;-0.000}"));
    }
}
