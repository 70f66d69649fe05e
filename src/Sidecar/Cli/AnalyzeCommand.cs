using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Logging;
using SlidePlugin.Engine.Analysis;
using SlidePlugin.Engine.Encoders;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Interop;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Sidecar.Hosting;
using Spectre.Console;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>
/// <c>slideplugin analyze</c>: the main job. Scores a slide with an A-MIL model (the bundled one by default) and writes
/// QuPath GeoJSON, a tile CSV, attention heatmaps and a JSON summary. Runs in-process, or on a sidecar with <c>--server</c>.
/// Results are kept in a SQLite store, so the same command again is answered from it and an interrupted one resumes.
/// </summary>
internal static partial class AnalyzeCommand
{
    public static Command Create(SlidePluginCli.GlobalOptions global)
    {
        var slide = new Argument<FileInfo>("slide") { Description = "Whole-slide image (SVS, NDPI, MRXS, tiled TIFF, ...)." };
        var model = new Option<FileInfo?>("--model") { Description = "Model checkpoint (.safetensors with its model card); default: the bundled model." };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Folder for the heatmaps, GeoJSON, CSV and summary (default: ./<slide name>.analysis)." };
        var mpp = new Option<double?>("--mpp") { Description = "The slide's resolution in µm per pixel, for files that lack it (many do)." };
        var server = new Option<string?>("--server") { Description = "Run on a running sidecar (e.g. http://127.0.0.1:50051) instead of in-process; the slide path is then the server's." };
        var targetMpp = new Option<double?>("--target-mpp") { Description = "Tile at this resolution instead of the model card's." };
        var tileSize = new Option<int?>("--tile-size") { Description = "Tile edge in pixels at the target resolution (default: the model's patch size; others are resized to it)." };
        var overlap = new Option<int>("--overlap") { Description = "Pixels shared by neighbouring tiles." };
        var minTissue = new Option<double>("--min-tissue") { Description = "Minimum tissue fraction of a scored tile.", DefaultValueFactory = _ => 0.5 };
        var store = new Option<FileInfo?>("--store") { Description = "SQLite store of analyses (default: <out>/analyses.sqlite)." };
        var encoder = new Option<FileInfo?>("--encoder") { Description = "Tile encoder (NAME.onnx with its card) for a --model that is a head on features, as CLAM's." };
        Option<EncoderDevice> device = CliEncoders.DeviceOption();

        var command = new Command("analyze", "Score a slide with attention-based MIL and write heatmaps, QuPath GeoJSON and CSV.");
        command.Arguments.Add(slide);
        foreach (Option option in new Option[] { model, encoder, device, output, mpp, server, targetMpp, tileSize, overlap, minTissue, store })
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            TextWriter stdout = parseResult.InvocationConfiguration.Output;
            TextWriter stderr = parseResult.InvocationConfiguration.Error;
            FileInfo slideFile = parseResult.GetRequiredValue(slide);
            string outDir = parseResult.GetValue(output)?.FullName ?? Path.Combine(Environment.CurrentDirectory, Path.GetFileNameWithoutExtension(slideFile.Name) + ".analysis");
            var options = new AnalysisOptions
            {
                TargetMpp = parseResult.GetValue(targetMpp),
                TileSize = parseResult.GetValue(tileSize),
                Overlap = parseResult.GetValue(overlap),
                MinTissueFraction = parseResult.GetValue(minTissue),
            };
            if (parseResult.GetValue(server) is { } serverText)
            {
                if (!Uri.TryCreate(serverText, UriKind.Absolute, out Uri? address) || address.Scheme is not ("http" or "https" or "unix"))
                {
                    stderr.WriteLine($"slideplugin: --server '{serverText}' is not a sidecar address such as http://127.0.0.1:50051.");
                    return ExitCodes.Usage;
                }

                return await RemoteAnalysis.RunAsync(address, slideFile.ToString(), parseResult.GetValue(model)?.FullName, parseResult.GetValue(mpp), options, outDir, stdout, stderr, cancellationToken).ConfigureAwait(false);
            }

            if (!NativeCheck.Passes(stderr, out IReadOnlyList<NativeDependencyStatus> natives))
            {
                return ExitCodes.MissingNativeDependency;
            }

            using ILoggerFactory loggerFactory = LoggingSetup.CreateLoggerFactory(SlidePluginCli.LogSettingsOf(parseResult, global));
            ILogger logger = loggerFactory.CreateLogger("SlidePlugin.Analyze");
            foreach (NativeDependencyStatus native in natives)
            {
                Log.NativeLibraryLoaded(logger, native.Dependency.DisplayName, native.FileName, native.Version ?? "?");
            }

            string modelPath = parseResult.GetValue(model)?.FullName ?? BundledModel.Path;
            string storePath = parseResult.GetValue(store)?.FullName ?? Path.Combine(outDir, "analyses.sqlite");
            TileEncoder? tileEncoder = null;
            if (parseResult.GetValue(encoder) is { } encoderFile)
            {
                if (!CliEncoders.TryLoad(encoderFile, parseResult.GetValue(device), stderr, out TileEncoder loaded))
                {
                    return ExitCodes.Failure;
                }

                tileEncoder = loaded;
            }

            using (tileEncoder)
            {
                return (await AnalyzeLocallyAsync(slideFile, parseResult.GetValue(mpp), modelPath, tileEncoder, storePath, options, outDir, stdout, stderr, cancellationToken).ConfigureAwait(false)).ExitCode;
            }
        });
        return command;
    }

    /// <summary>
    /// The in-process analysis of one slide into <paramref name="outDir"/>, with its store at <paramref name="storePath"/> (an
    /// interrupted run resumes from it): what <c>analyze</c> and a cohort task run. Failures are one line on
    /// <paramref name="stderr"/>; the result is null unless the exit code is <see cref="ExitCodes.Success"/>.
    /// </summary>
    internal static async Task<(int ExitCode, AnalysisResult? Result)> AnalyzeLocallyAsync(FileInfo slideFile, double? mppOverride, string modelPath, TileEncoder? encoder,
        string storePath, AnalysisOptions options, string outDir, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        AnalysisModel model;
        try
        {
            model = AnalysisModel.Load(modelPath, encoder);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or SafeTensorsException or ModelCheckpointException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"slideplugin: cannot load model '{modelPath}': {e.Message}");
            return (ExitCodes.Failure, null);
        }

        if (!CliSlides.TryOpen(slideFile, mppOverride, stderr, out Slide slide, out _, out double mpp))
        {
            return (ExitCodes.Failure, null);
        }

        using (slide)
        {
            SlideAnalyzer analyzer;
            try
            {
                analyzer = new SlideAnalyzer(new AnalysisStore(storePath), model);
            }
            catch (AnalysisStoreCorruptException e)
            {
                stderr.WriteLine($"slideplugin: {e.Message}");
                return (ExitCodes.Failure, null);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"slideplugin: cannot open the analysis store '{storePath}': {e.Message}");
                return (ExitCodes.Failure, null);
            }

            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Analysing {slideFile.Name} ({slide.Dimensions.Width} x {slide.Dimensions.Height} px, {mpp:0.####} µm/px) with {model.Card.Name}{(encoder is null ? "" : $" on {encoder.Card.Name} features ({encoder.Device})")} ({options.TileSize ?? model.InputSize} px tiles at {options.TargetMpp ?? model.Mpp:0.###} µm/px)"));
            AnalysisResult result;
            try
            {
                result = Interactive(stdout)
                    ? await WithProgressBarAsync(report => analyzer.AnalyzeAsync(slide, mpp, options, report, cancellationToken)).ConfigureAwait(false)
                    : await analyzer.AnalyzeAsync(slide, mpp, options, ProgressLines(stdout), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                stdout.WriteLine($"Stopped: the tiles scored so far are kept in {storePath}; the same command resumes.");
                return (ExitCodes.Interrupted, null);
            }
            catch (Exception e) when (e is SlideException or ArgumentException or InvalidOperationException or AnalysisStoreCorruptException)
            {
                stderr.WriteLine($"slideplugin: {e.Message}");
                return (ExitCodes.Failure, null);
            }

            IReadOnlyList<string> files;
            try
            {
                files = AnalysisFiles.Write(result, slide, outDir);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Every file is written to a temporary name and renamed: none is left half-written.
                stderr.WriteLine($"slideplugin: cannot write the results into '{outDir}': {e.Message}");
                return (ExitCodes.Failure, null);
            }

            Report(result, files, stdout);
            return (ExitCodes.Success, result);
        }
    }

    /// <summary>The outcome in a few lines: prediction, counts, speed, files.</summary>
    internal static void Report(AnalysisResult result, IReadOnlyList<string> files, TextWriter stdout)
    {
        stdout.WriteLine(PredictionLine(result.Header.Classes, result.Probabilities, result.PredictedClassName, result.Header.TileCount, result.Seconds, result.FromStore));
        foreach (string file in files)
        {
            stdout.WriteLine($"  {file}");
        }
    }

    /// <summary>The one line both the in-process and the <c>--server</c> paths print for a finished analysis.</summary>
    internal static string PredictionLine(IReadOnlyList<string> classes, IReadOnlyList<float> probabilities, string predicted, int tiles, double seconds, bool fromStore)
    {
        string each = string.Join(", ", classes.Select((c, i) => string.Create(CultureInfo.InvariantCulture, $"{c} {probabilities[i]:0.000}")));
        return string.Create(CultureInfo.InvariantCulture, $"Prediction: {predicted} ({each}); {tiles} tiles in {seconds:0.0} s{(fromStore ? ", answered from the store" : "")}");
    }

    internal static bool Interactive(TextWriter stdout) =>
        ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>A line every 10 % of the tiles, for logs and pipes.</summary>
    internal static Action<AnalysisEvent> ProgressLines(TextWriter stdout)
    {
        int nextTenth = 1;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        return e =>
        {
            if (e is AnalysisEvent.Scored scored && scored.Done * 10 >= nextTenth * scored.Total)
            {
                nextTenth = (scored.Done * 10 / scored.Total) + 1;
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"tiles={scored.Done}/{scored.Total} elapsed_seconds={clock.Elapsed.TotalSeconds:0.0}"));
            }
        };
    }

    /// <summary>Runs <paramref name="work"/> under a progress bar with tiles/s and ETA.</summary>
    internal static Task<T> WithProgressBarAsync<T>(Func<Action<AnalysisEvent>, Task<T>> work) =>
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TilesPerSecondColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(context =>
            {
                ProgressTask task = context.AddTask("tiles");
                return work(e =>
                {
                    if (e is AnalysisEvent.Started started)
                    {
                        task.MaxValue = started.Header.TileCount;
                        task.Value = started.Header.TilesAlreadyScored;
                    }
                    else if (e is AnalysisEvent.Scored scored)
                    {
                        task.Value = scored.Done;
                    }
                });
            });

    /// <summary>Tiles per second, from Spectre's own speed estimate.</summary>
    private sealed class TilesPerSecondColumn : ProgressColumn
    {
        public override Spectre.Console.Rendering.IRenderable Render(Spectre.Console.Rendering.RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Markup(string.Create(CultureInfo.InvariantCulture, $"{task.Speed ?? 0:0} tiles/s"));
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Debug, Message = "{Library} loaded from {FileName}, version {Version}")]
        public static partial void NativeLibraryLoaded(ILogger logger, string library, string fileName, string version);
    }
}

/// <summary>The model <c>analyze</c> uses when none is given: committed under <c>models/default</c>, copied beside the program.</summary>
internal static class BundledModel
{
    /// <summary>File name of the bundled checkpoint (its card is beside it, .json).</summary>
    public const string FileName = "ucsb-gated-amil.safetensors";

    /// <summary>The folder of the bundled models at run time (a default model root of <c>serve</c>).</summary>
    public static string Folder => System.IO.Path.Combine(AppContext.BaseDirectory, "models");

    /// <summary>Where the bundled checkpoint is at run time.</summary>
    public static string Path => System.IO.Path.Combine(Folder, "default", FileName);
}
