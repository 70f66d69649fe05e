using System.CommandLine;

namespace SlidePlugin.Sidecar.Cli;

/// <summary><c>slideplugin train</c>: trains an A-MIL model from image- or slide-level labels.</summary>
internal static class TrainCommand
{
    public static Command Create(SlidePluginCli.GlobalOptions global)
    {
        _ = global;
        var dataset = new Option<string>("--dataset")
        {
            Description = "Kind of data set: breakhis (folders <mag>/<train|test>/<0|1>), ucsb (UCSB breast TIFFs), " +
                          "mnist-bags (MNIST idx files), slides (CSV of slide,label[,split]).",
            Required = true,
        };
        dataset.AcceptOnlyFromAmong("breakhis", "ucsb", "mnist-bags", "slides");
        var data = new Option<FileSystemInfo>("--data") { Description = "Folder or CSV holding the data set.", Required = true };
        var model = new Option<string>("--model")
        {
            Description = "Model: attention (Ilse et al. A-MIL) or gated (gated attention).",
            DefaultValueFactory = _ => "gated",
        };
        model.AcceptOnlyFromAmong("attention", "gated");
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for checkpoints, model card, metrics and plots.", Required = true };
        var epochs = new Option<int>("--epochs") { Description = "Number of epochs.", DefaultValueFactory = _ => 100 };
        var seed = new Option<int>("--seed") { Description = "Random seed (data split, initialisation, shuffling).", DefaultValueFactory = _ => 1 };
        var resume = new Option<bool>("--resume") { Description = "Continue the run stored in --out from its last checkpoint." };

        var command = new Command("train", "Train an attention-based MIL model from image- or slide-level labels.");
        foreach (Option option in new Option[] { dataset, data, model, output, epochs, seed, resume })
        {
            command.Options.Add(option);
        }

        command.SetAction(parseResult => SlidePluginCli.ReportNotImplemented(parseResult, "training ('train')", 6));
        return command;
    }
}
