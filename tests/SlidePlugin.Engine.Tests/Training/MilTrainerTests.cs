using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Training;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Training;

public sealed class MilTrainerTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-trainer").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Run_SmallMnistBags_LossFallsAndTestAucAbove09()
    {
        var bags = new MnistBags(TestData.Path("mnist"), new MnistBagsOptions { TrainBags = 150, TestBags = 100, Seed = 1 });
        var trainer = new MilTrainer(bags, new TrainingOptions { Attention = MilAttention.Attention, Epochs = 4, Seed = 1 }, Path.Combine(_folder, "run"));

        TrainingResult result = trainer.Run();

        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.True(result.History[^1].Train.Loss < result.History[0].Train.Loss * 0.7, $"train loss {result.History[0].Train.Loss} -> {result.History[^1].Train.Loss}");
        Assert.True(result.Test!.Auc > 0.9, $"test AUC {result.Test.Auc}");
        Assert.Equal(100, result.Test.Count);

        // Everything a user looks for is there, and the best model loads with its card.
        foreach (string file in new[] { "model-best.safetensors", "model-best.json", "model-last.safetensors", "metrics.csv", "curves.png", "split.json", "summary.json", MilTrainer.RunFile })
        {
            Assert.True(File.Exists(Path.Combine(_folder, "run", file)), file);
        }

        Assert.Equal(5, File.ReadAllLines(Path.Combine(_folder, "run", "metrics.csv")).Length);
        Raster curves = ImageCodec.Decode(File.ReadAllBytes(Path.Combine(_folder, "run", "curves.png")));
        Assert.Equal((960, 400), (curves.Width, curves.Height));
        (AttentionMil model, ModelCard card) = ModelCheckpoint.Load(result.BestModelPath!);
        Assert.Equal(["no 9", "has 9"], card.Classes);
        Assert.Equal([0.1307f], card.InputMean);
        Assert.Equal(result.Test.Auc, card.Metrics["test_auc"], 5);
        Assert.Equal(1, model.Spec.Channels);
    }

    [Fact]
    public void Resume_AfterStop_GivesTheUninterruptedRunsParametersExactly()
    {
        var bags = new MnistBags(TestData.Path("mnist"), new MnistBagsOptions { TrainBags = 30, TestBags = 10, Seed = 2 });
        var options = new TrainingOptions { Epochs = 3, Seed = 9, Augment = true };
        string straight = Path.Combine(_folder, "straight"), resumed = Path.Combine(_folder, "resumed");
        new MilTrainer(bags, options, straight).Run();

        // Stopped in the middle of epoch 2: the files stay those of epoch 1.
        using var stop = new CancellationTokenSource();
        var first = new MilTrainer(bags, options, resumed);
        first.BagTrained += p =>
        {
            if (p.Epoch == 2 && p.Bag == 10)
            {
                stop.Cancel();
            }
        };
        TrainingResult stopped = first.Run(stop.Token);
        Assert.Equal((TrainingStatus.Cancelled, 1), (stopped.Status, stopped.EpochsDone));

        TrainingResult finished = new MilTrainer(bags, options with { Resume = true }, resumed).Run();

        Assert.Equal(3, finished.EpochsDone);
        Assert.Equal(SafeTensors.Load(Path.Combine(straight, "model-last.safetensors")).Sha256(), SafeTensors.Load(Path.Combine(resumed, "model-last.safetensors")).Sha256());
        // The optimizer's moments and step count too: the resumed run can go on exactly as the other.
        SafeTensorsFile a = SafeTensors.Load(Path.Combine(straight, MilTrainer.RunFile)), b = SafeTensors.Load(Path.Combine(resumed, MilTrainer.RunFile));
        Assert.Equal(a.Entries.Keys.Order(), b.Entries.Keys.Order());
        Assert.Contains("optimizer.0.step", a.Entries.Keys);
        foreach (string name in a.Entries.Keys)
        {
            using Engine.Tensors.Tensor x = a.ToTensor(name), y = b.ToTensor(name);
            Assert.Equal(x.ToArray(), y.ToArray());
        }
    }

    [Theory]
    [InlineData("model-last.safetensors")]
    [InlineData("model-best.safetensors")]
    [InlineData("metrics.csv")]
    [InlineData("curves.png")]
    [InlineData(MilTrainer.RunFile)]
    public void Resume_KilledBeforeAnEpochsWrite_EveryFileAsInTheUninterruptedRun(string killedBefore)
    {
        var bags = new MnistBags(TestData.Path("mnist"), new MnistBagsOptions { TrainBags = 20, TestBags = 10, Seed = 3 });
        var options = new TrainingOptions { Epochs = 3, Seed = 4, ValidationFraction = 0 }; // no validation: every epoch is the best so far
        string straight = Path.Combine(_folder, "straight"), killed = Path.Combine(_folder, "killed");
        TrainingResult uninterrupted = new MilTrainer(bags, options, straight).Run();

        var first = new MilTrainer(bags, options, killed);
        int seen = 0;
        first.BeforeEpochWrite = name =>
        {
            if (name == killedBefore && ++seen == options.Epochs)
            {
                // In the last epoch, before this write: what a kill leaves. A resume then has the least left to put right.
                throw new OperationCanceledException("killed");
            }
        };
        Assert.Throws<OperationCanceledException>(() => first.Run());
        TrainingResult resumed = new MilTrainer(bags, options with { Resume = true }, killed).Run();

        Assert.Equal(uninterrupted.BestEpoch, resumed.BestEpoch);
        foreach (string file in new[] { "model-best.safetensors", "model-last.safetensors" })
        {
            Assert.True(SafeTensors.Load(Path.Combine(straight, file)).Sha256() == SafeTensors.Load(Path.Combine(killed, file)).Sha256(), file);
        }

        // The resume state's tensors (its metadata holds the epochs' wall-clock seconds, which differ).
        SafeTensorsFile a = SafeTensors.Load(Path.Combine(straight, MilTrainer.RunFile)), b = SafeTensors.Load(Path.Combine(killed, MilTrainer.RunFile));
        foreach (string name in a.Entries.Keys)
        {
            using Engine.Tensors.Tensor x = a.ToTensor(name), y = b.ToTensor(name);
            Assert.Equal(x.ToArray(), y.ToArray());
        }

        Assert.Equal(WithoutSeconds(Path.Combine(straight, "metrics.csv")), WithoutSeconds(Path.Combine(killed, "metrics.csv")));
        ModelCard straightCard = ModelCheckpoint.Load(Path.Combine(straight, "model-best.safetensors")).Card;
        ModelCard killedCard = ModelCheckpoint.Load(Path.Combine(killed, "model-best.safetensors")).Card; // card and weights agree
        Assert.Equal(straightCard.Metrics, killedCard.Metrics);
    }

    /// <summary>metrics.csv without its wall-clock column: every other value must be the same bits.</summary>
    private static string[][] WithoutSeconds(string path)
    {
        string[][] rows = [.. File.ReadAllLines(path).Select(l => l.Split(','))];
        int seconds = Array.IndexOf(rows[0], "seconds");
        Assert.True(seconds >= 0, "metrics.csv has a seconds column");
        return [.. rows.Select(r => r.Where((_, i) => i != seconds).ToArray())];
    }

    [Fact]
    public void Run_FolderHoldingARun_IsRefusedWithoutResume()
    {
        var bags = new MnistBags(TestData.Path("mnist"), new MnistBagsOptions { TrainBags = 10, TestBags = 0 });
        string output = Path.Combine(_folder, "once");
        new MilTrainer(bags, new TrainingOptions { Epochs = 1, ValidationFraction = 0 }, output).Run();

        var error = Assert.Throws<InvalidOperationException>(() => new MilTrainer(bags, new TrainingOptions { Epochs = 1, ValidationFraction = 0 }, output).Run());
        Assert.Contains("resume", error.Message, StringComparison.Ordinal);

        var other = new MnistBags(TestData.Path("mnist"), new MnistBagsOptions { TrainBags = 10, TestBags = 0, Seed = 5 });
        var mismatch = Assert.Throws<InvalidOperationException>(() => new MilTrainer(other, new TrainingOptions { Epochs = 2, ValidationFraction = 0, Resume = true }, output).Run());
        Assert.Contains("split", mismatch.Message, StringComparison.Ordinal);
    }
}
