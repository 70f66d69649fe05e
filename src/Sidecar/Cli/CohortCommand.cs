using System.CommandLine;
using System.Globalization;
using System.Text;
using SlidePlugin.Engine.Analysis;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Encoders;
using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Sidecar.Cohorts;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>
/// <c>slideplugin cohort</c>: a whole cohort as a Slurm job array. <c>plan</c> writes the run folder and its array script,
/// <c>run-task</c> analyses one slide (a task of the array), <c>status</c> and <c>collect</c> read what the tasks wrote.
/// Each slide has its own folder and analysis store: tasks on many nodes never share a writable file.
/// </summary>
internal static class CohortCommand
{
    public static Command Create(SlidePluginCli.GlobalOptions global)
    {
        _ = global;
        var command = new Command("cohort", "Analyse a cohort of slides as a Slurm job array: plan, run-task, status, collect.");
        command.Subcommands.Add(Plan());
        command.Subcommands.Add(RunTask());
        command.Subcommands.Add(Status());
        command.Subcommands.Add(Collect());
        return command;
    }

    private static Option<DirectoryInfo> RunOption() => new("--run") { Description = "The cohort run folder (made by 'cohort plan').", Required = true };

    private static Command Plan()
    {
        var slides = new Option<string>("--slides") { Description = "A folder of slides (searched recursively) or a CSV with a 'slide' column (paths relative to the CSV).", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "The run folder to create.", Required = true };
        var model = new Option<FileInfo?>("--model") { Description = "Model checkpoint (.safetensors with its card); default: the bundled model." };
        var encoder = new Option<FileInfo?>("--encoder") { Description = "Tile encoder (NAME.onnx with its card) for a --model on features." };
        Option<EncoderDevice> device = CliEncoders.DeviceOption();
        var mpp = new Option<double?>("--mpp") { Description = "Resolution of slides that record none, µm/px." };
        var targetMpp = new Option<double?>("--target-mpp") { Description = "Tile at this resolution instead of the model card's." };
        var tileSize = new Option<int?>("--tile-size") { Description = "Tile edge in pixels at the target resolution." };
        var minTissue = new Option<double>("--min-tissue") { Description = "Minimum tissue fraction of a scored tile.", DefaultValueFactory = _ => 0.5 };
        var gpus = new Option<int>("--gpus-per-task") { Description = "GPUs per task (--gres=gpu:N; the encoder runs on cuda).", DefaultValueFactory = _ => 0 };
        var cpus = new Option<int>("--cpus-per-task") { Description = "Cores per task.", DefaultValueFactory = _ => 2 };
        var parallel = new Option<int>("--max-parallel") { Description = "Tasks running at once (the %K of --array).", DefaultValueFactory = _ => 32 };
        var partition = new Option<string?>("--partition") { Description = "Slurm partition (default: the cluster's)." };
        var time = new Option<string?>("--time") { Description = "Slurm time limit per task, e.g. 02:00:00." };
        var command = new Command("plan", "Write RUN/manifest.csv, RUN/cohort.json and RUN/cohort.sbatch (a job array, one task per slide).");
        foreach (Option option in new Option[] { slides, output, model, encoder, device, mpp, targetMpp, tileSize, minTissue, gpus, cpus, parallel, partition, time })
        {
            command.Options.Add(option);
        }

        command.SetAction(parseResult => CliWork.Run(parseResult, stdout =>
        {
            var run = new CohortRun(parseResult.GetRequiredValue(output).FullName);
            if (File.Exists(run.ManifestPath))
            {
                throw new CohortException($"'{run.Folder}' already holds a cohort run: plan into a new folder, or use 'cohort status' and 'cohort run-task' on this one.");
            }

            if (parseResult.GetValue(gpus) is < 0 || parseResult.GetValue(cpus) is < 1 || parseResult.GetValue(parallel) is < 1)
            {
                throw new ArgumentException("--gpus-per-task is at least 0, --cpus-per-task and --max-parallel at least 1.");
            }

            EncoderDevice chosen = parseResult.GetValue(device);
            var settings = new CohortSettings
            {
                Model = parseResult.GetValue(model)?.FullName ?? BundledModel.Path,
                Encoder = parseResult.GetValue(encoder)?.FullName,
                Device = parseResult.GetValue(gpus) > 0 && chosen == EncoderDevice.Cpu ? "cuda" : chosen.ToString(),
                SlideMpp = parseResult.GetValue(mpp),
                TargetMpp = parseResult.GetValue(targetMpp),
                TileSize = parseResult.GetValue(tileSize),
                MinTissue = parseResult.GetValue(minTissue),
            };
            (double modelMpp, int inputSize) = LoadGeometry(settings);
            IReadOnlyList<CohortSlide> rows = CohortPlanner.Plan(CohortPlanner.SlidesOf(parseResult.GetRequiredValue(slides)), settings, modelMpp, inputSize);
            run.Write(settings, rows);
            Directory.CreateDirectory(run.LogFolder);
            var resources = new CohortResources(parseResult.GetValue(parallel), parseResult.GetValue(cpus), parseResult.GetValue(gpus), parseResult.GetValue(partition), parseResult.GetValue(time));
            AtomicFile.WriteAllText(run.BatchScriptPath, CohortPlanner.BatchScript(run, rows, resources, CohortPlanner.SelfCommand(), settings.Encoder is not null));
            int unreadable = rows.Count(r => r.Status != "planned");
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Planned {rows.Count} slides (about {rows.Sum(r => r.EstimatedTiles):N0} grid cells){(unreadable > 0 ? $"; {unreadable} could not be opened and will fail with their reason" : "")}."));
            stdout.WriteLine($"  {run.ManifestPath}");
            stdout.WriteLine($"  {run.BatchScriptPath}");
            stdout.WriteLine($"Submit:   sbatch {CohortPlanner.Quote(run.BatchScriptPath)}");
            stdout.WriteLine($"Follow:   slideplugin cohort status --run {CohortPlanner.Quote(run.Folder)}");
            stdout.WriteLine($"Results:  slideplugin cohort collect --run {CohortPlanner.Quote(run.Folder)}");
        }));
        return command;
    }

    private static (double Mpp, int InputSize) LoadGeometry(CohortSettings settings)
    {
        TileEncoder? encoder = settings.Encoder is { } path ? TileEncoder.Load(path, EncoderDevice.Cpu) : null;
        using (encoder)
        {
            try
            {
                return CohortPlanner.ModelGeometry(AnalysisModel.Load(settings.Model, encoder), settings);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or SafeTensorsException or ModelCheckpointException)
            {
                throw new CohortException($"Cannot load the model '{settings.Model}': {e.Message}");
            }
        }
    }

    private static Command RunTask()
    {
        Option<DirectoryInfo> runOption = RunOption();
        var index = new Option<int?>("--index") { Description = "The manifest row to analyse (default: $SLURM_ARRAY_TASK_ID)." };
        var command = new Command("run-task", "Analyse one slide of a cohort into RUN/slides/<stem>/ (a task of the job array; resumes an interrupted slide).");
        command.Options.Add(runOption);
        command.Options.Add(index);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            TextWriter stdout = parseResult.InvocationConfiguration.Output, stderr = parseResult.InvocationConfiguration.Error;
            int? row = parseResult.GetValue(index) ?? (int.TryParse(Environment.GetEnvironmentVariable("SLURM_ARRAY_TASK_ID"), CultureInfo.InvariantCulture, out int task) ? task : null);
            if (row is null)
            {
                stderr.WriteLine("slideplugin: give --index, or run as a task of the cohort's job array ($SLURM_ARRAY_TASK_ID is not set).");
                return ExitCodes.Usage;
            }

            if (!NativeCheck.Passes(stderr, out _))
            {
                return ExitCodes.MissingNativeDependency;
            }

            var run = new CohortRun(parseResult.GetRequiredValue(runOption).FullName);
            CohortSettings settings;
            CohortSlide slide;
            try
            {
                settings = run.ReadSettings();
                IReadOnlyList<CohortSlide> slides = run.ReadManifest();
                slide = row >= 0 && row < slides.Count ? slides[row.Value]
                    : throw new CohortException($"Task {row} is not a row of '{run.ManifestPath}' (0..{slides.Count - 1}).");
            }
            catch (CohortException e)
            {
                stderr.WriteLine($"slideplugin: {e.Message}");
                return ExitCodes.Failure;
            }

            return await RunSlideAsync(run, settings, slide, stdout, stderr, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>
    /// One slide: skipped when its result is there, else analysed with its own store (resuming what an earlier attempt
    /// scored); the status file says running, done, failed (with the reason) or interrupted, the result file is written last.
    /// </summary>
    private static async Task<int> RunSlideAsync(CohortRun run, CohortSettings settings, CohortSlide slide, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        string folder = run.SlideFolder(slide);
        Directory.CreateDirectory(folder);
        if (CohortRun.ReadResult(folder) is { } done)
        {
            stdout.WriteLine($"{slide.Slide}: done already ({done.Prediction}); delete '{CohortRun.ResultPath(folder)}' to analyse it again.");
            return ExitCodes.Success;
        }

        string? job = Environment.GetEnvironmentVariable("SLURM_ARRAY_JOB_ID") is { Length: > 0 } array
            ? $"{array}_{Environment.GetEnvironmentVariable("SLURM_ARRAY_TASK_ID")}" : null;
        CohortSlideStatus StatusOf(string state, string? reason) => new(state, reason, Environment.MachineName, job, DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture));
        CohortRun.WriteStatus(folder, StatusOf("running", null));

        // The failure's own line, as analyze prints it, is the reason the status and the table give.
        using var errors = new StringWriter();
        var both = new TeeWriter(stderr, errors);
        TileEncoder? encoder = null;
        int exitCode;
        AnalysisResult? result = null;
        try
        {
            if (settings.Encoder is { } encoderPath && !CliEncoders.TryLoad(new FileInfo(encoderPath), EncoderDevice.Parse(settings.Device), both, out encoder))
            {
                exitCode = ExitCodes.Failure;
            }
            else
            {
                var options = new AnalysisOptions { TargetMpp = settings.TargetMpp, TileSize = settings.TileSize, MinTissueFraction = settings.MinTissue };
                (exitCode, result) = await AnalyzeCommand.AnalyzeLocallyAsync(new FileInfo(slide.Slide), settings.SlideMpp, settings.Model, encoder, CohortRun.StorePath(folder),
                    options, folder, stdout, both, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            encoder?.Dispose();
        }

        if (result is not null)
        {
            CohortRun.WriteResult(folder, new CohortSlideResult(slide.Slide, result.PredictedClassName, result.Header.Classes, result.Probabilities, result.Tiles.Count, Math.Round(result.Seconds, 3)));
            CohortRun.WriteStatus(folder, StatusOf("done", null));
            return ExitCodes.Success;
        }

        string reason = errors.ToString().Trim().Replace("slideplugin: ", "", StringComparison.Ordinal);
        CohortRun.WriteStatus(folder, exitCode == ExitCodes.Interrupted
            ? StatusOf("interrupted", "stopped before the end; the next attempt resumes from the slide's store")
            : StatusOf("failed", reason.Length > 0 ? reason : $"exit code {exitCode}"));
        return exitCode;
    }

    private static Command Status()
    {
        Option<DirectoryInfo> runOption = RunOption();
        var command = new Command("status", "How far a cohort run is: slides done, running, failed (with the reason), interrupted, not started.");
        command.Options.Add(runOption);
        command.SetAction(parseResult => CliWork.Run(parseResult, stdout =>
        {
            IReadOnlyList<CohortOutcome> outcomes = new CohortRun(parseResult.GetRequiredValue(runOption).FullName).Outcomes();
            foreach ((CohortSlide slide, _, CohortSlideStatus? status) in outcomes.Where(o => o.Result is null && o.Status is not null))
            {
                stdout.WriteLine($"{slide.Index,5} {status!.State,-11} {Path.GetFileName(slide.Slide)}{(status.Reason is { } reason ? ": " + reason : "")}{(status.State == "running" ? $" (on {status.Host}{(status.Job is { } j ? ", job " + j : "")}, since {status.Time})" : "")}");
            }

            int Count(string state) => outcomes.Count(o => o.State == state);
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{outcomes.Count} slides: {Count("done")} done, {Count("running")} running, {Count("failed")} failed, {Count("interrupted")} interrupted, {Count("not started")} not started."));
        }));
        return command;
    }

    private static Command Collect()
    {
        Option<DirectoryInfo> runOption = RunOption();
        var command = new Command("collect", "Merge the slides' results into RUN/cohort.csv (slide, status, prediction, class probabilities, tiles, seconds, reason).");
        command.Options.Add(runOption);
        command.SetAction(parseResult => CliWork.Run(parseResult, stdout =>
        {
            var run = new CohortRun(parseResult.GetRequiredValue(runOption).FullName);
            IReadOnlyList<CohortOutcome> outcomes = run.Outcomes();
            IReadOnlyList<string> classes = outcomes.Select(o => o.Result?.Classes).FirstOrDefault(c => c is not null) ?? [];
            var csv = new StringBuilder("index,slide,status,prediction");
            foreach (string name in classes)
            {
                csv.Append(",prob_").Append(CsvFields.Quote(name));
            }

            csv.Append(",tiles,seconds,reason\n");
            foreach (CohortOutcome outcome in outcomes)
            {
                (CohortSlide slide, CohortSlideResult? result, CohortSlideStatus? status) = outcome;
                csv.Append(CultureInfo.InvariantCulture, $"{slide.Index},{CsvFields.Quote(slide.Slide)},{outcome.State},{CsvFields.Quote(result?.Prediction ?? "")}");
                for (int c = 0; c < classes.Count; c++)
                {
                    csv.Append(',').Append(result is null ? "" : result.Probabilities[c].ToString("R", CultureInfo.InvariantCulture));
                }

                csv.Append(CultureInfo.InvariantCulture, $",{(result is null ? "" : result.Tiles.ToString(CultureInfo.InvariantCulture))},{(result is null ? "" : result.Seconds.ToString("0.###", CultureInfo.InvariantCulture))},{CsvFields.Quote(result is null ? status?.Reason ?? "" : "")}\n");
            }

            AtomicFile.WriteAllText(run.TablePath, csv.ToString());
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{run.TablePath}: {outcomes.Count(o => o.State == "done")} of {outcomes.Count} slides done, {outcomes.Count(o => o.State == "failed")} failed."));
        }));
        return command;
    }

    /// <summary>Writes to two writers: the task's stderr (Slurm's log) and the reason kept for the status.</summary>
    private sealed class TeeWriter(TextWriter first, TextWriter second) : TextWriter
    {
        public override Encoding Encoding => first.Encoding;

        public override void Write(char value)
        {
            first.Write(value);
            second.Write(value);
        }

        public override void Write(string? value)
        {
            first.Write(value);
            second.Write(value);
        }

        public override void WriteLine(string? value)
        {
            first.WriteLine(value);
            second.WriteLine(value);
        }
    }
}
