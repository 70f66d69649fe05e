using System.Globalization;
using System.Text;
using SlidePlugin.Engine.Analysis;
using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.Slides;

namespace SlidePlugin.Sidecar.Cohorts;

/// <summary>What a Slurm job array asks for, per task.</summary>
/// <param name="MaxParallel">Tasks running at once (<c>%K</c> of <c>--array</c>).</param>
/// <param name="CpusPerTask">Cores per task; the analysis uses them all (SLIDEPLUGIN_THREADS).</param>
/// <param name="GpusPerTask">GPUs per task (<c>--gres=gpu:N</c>); 0 for none.</param>
/// <param name="Partition">Slurm partition, or null for the default.</param>
/// <param name="TimeLimit">Slurm <c>--time</c>, or null for the partition's.</param>
internal sealed record CohortResources(int MaxParallel, int CpusPerTask, int GpusPerTask, string? Partition, string? TimeLimit);

/// <summary>Makes a cohort run: the slide list with estimates, the settings, and the Slurm array script.</summary>
internal static class CohortPlanner
{
    /// <summary>
    /// The slides <paramref name="source"/> names: every slide file under a folder (recursively, in ordinal order), or the
    /// <c>slide</c> (or <c>slide_path</c>, <c>path</c>) column of a CSV, else its first column; relative paths are the CSV's folder's.
    /// </summary>
    /// <exception cref="CohortException">Nothing there, or a CSV naming a file that does not exist.</exception>
    public static IReadOnlyList<string> SlidesOf(string source)
    {
        if (Directory.Exists(source))
        {
            List<string> found = [.. Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories)
                .Where(f => Slide.FileExtensions.Contains(Path.GetExtension(f))).Select(Path.GetFullPath).Order(StringComparer.Ordinal)];
            return found.Count > 0 ? found : throw new CohortException($"No slide ({string.Join(" ", Slide.FileExtensions)}) under '{source}'.");
        }

        if (!File.Exists(source))
        {
            throw new CohortException($"--slides '{source}' is neither a folder nor a CSV file.");
        }

        string folder = Path.GetDirectoryName(Path.GetFullPath(source))!;
        List<string> lines = [.. File.ReadAllLines(source).Where(l => l.Trim().Length > 0)];
        IReadOnlyList<string> header = lines.Count > 0 ? CsvFields.Split(lines[0]) : [];
        int column = header.Select(h => h.Trim().ToLowerInvariant()).ToList() is var names && names.FindIndex(n => n is "slide" or "slide_path" or "path") is >= 0 and var named ? named : 0;
        bool hasHeader = header.Count > 0 && !File.Exists(Path.Combine(folder, header[column].Trim()));
        var slides = new List<string>();
        foreach (string line in lines.Skip(hasHeader ? 1 : 0))
        {
            IReadOnlyList<string> cells = CsvFields.Split(line);
            string path = Path.GetFullPath(Path.Combine(folder, cells[Math.Min(column, cells.Count - 1)].Trim()));
            slides.Add(File.Exists(path) ? path : throw new CohortException($"'{source}' names '{path}', which does not exist."));
        }

        return slides.Count > 0 ? slides : throw new CohortException($"'{source}' names no slide.");
    }

    /// <summary>
    /// The manifest rows: each slide opened for its size and the grid cells at the target resolution (an upper bound of
    /// its tiles, found without tissue detection so that planning a thousand slides takes seconds). A slide that cannot be
    /// opened is kept, with the reason as its status: its task fails saying so, and the table lists it.
    /// </summary>
    public static IReadOnlyList<CohortSlide> Plan(IReadOnlyList<string> slides, CohortSettings settings, double modelMpp, int modelInputSize)
    {
        var rows = new List<CohortSlide>(slides.Count);
        var folders = new HashSet<string>(StringComparer.Ordinal);
        foreach (string path in slides)
        {
            string stem = Path.GetFileNameWithoutExtension(path), folder = stem;
            for (int n = 2; !folders.Add(folder); n++)
            {
                folder = $"{stem}-{n}";
            }

            long width = 0, height = 0, tiles = 0;
            string status = "planned";
            try
            {
                using Slide slide = Slide.Open(path);
                (width, height) = slide.Dimensions;
                double slideMpp = slide.RequireMpp(settings.SlideMpp);
                double tileL0 = (settings.TileSize ?? modelInputSize) * (settings.TargetMpp ?? modelMpp) / slideMpp;
                tiles = (long)(Math.Floor(width / tileL0) * Math.Floor(height / tileL0));
            }
            catch (SlideException e)
            {
                status = "unreadable: " + e.Message;
            }

            rows.Add(new CohortSlide(rows.Count, path, folder, width, height, tiles, status));
        }

        return rows;
    }

    /// <summary>
    /// The job array script: one task per manifest row, at most <see cref="CohortResources.MaxParallel"/> at once, requeued
    /// when a node fails (a requeued task resumes its slide from the slide's store). Memory: the analysis holds one batch,
    /// a tile look-ahead and its model, flat in slide size, plus about 1 KiB a tile for the final attention and the exports.
    /// </summary>
    public static string BatchScript(CohortRun run, IReadOnlyList<CohortSlide> slides, CohortResources resources, string command, bool encoder)
    {
        long maxTiles = slides.Count == 0 ? 0 : slides.Max(s => s.EstimatedTiles);
        long memoryMiB = (encoder ? 3072 : 1536) + (maxTiles * 1024 / (1024 * 1024));
        string name = "slideplugin-" + new string([.. Path.GetFileName(run.Folder).Where(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')]);
        var script = new StringBuilder();
        script.Append("#!/bin/bash\n");
        script.Append(CultureInfo.InvariantCulture, $"# SlidePlugin cohort: {slides.Count} slides, written by 'slideplugin cohort plan'. Submit with: sbatch {Quote(run.BatchScriptPath)}\n");
        script.Append(CultureInfo.InvariantCulture, $"#SBATCH --job-name={name}\n");
        script.Append(CultureInfo.InvariantCulture, $"#SBATCH --array=0-{slides.Count - 1}%{Math.Max(1, resources.MaxParallel)}\n");
        script.Append(CultureInfo.InvariantCulture, $"#SBATCH --cpus-per-task={resources.CpusPerTask}\n");
        script.Append(CultureInfo.InvariantCulture, $"#SBATCH --mem={memoryMiB}M\n");
        script.Append("#SBATCH --requeue\n");
        // Slurm reads #SBATCH lines literally: a path with spaces cannot be quoted there, so the log folder must have none.
        script.Append(CultureInfo.InvariantCulture, $"#SBATCH --output={run.LogFolder}/%A_%a.out\n");
        if (resources.GpusPerTask > 0)
        {
            script.Append(CultureInfo.InvariantCulture, $"#SBATCH --gres=gpu:{resources.GpusPerTask}\n");
        }

        if (resources.Partition is { } partition)
        {
            script.Append(CultureInfo.InvariantCulture, $"#SBATCH --partition={partition}\n");
        }

        if (resources.TimeLimit is { } time)
        {
            script.Append(CultureInfo.InvariantCulture, $"#SBATCH --time={time}\n");
        }

        script.Append(CultureInfo.InvariantCulture, $"export SLIDEPLUGIN_THREADS=\"${{SLURM_CPUS_PER_TASK:-{resources.CpusPerTask}}}\"\n");
        script.Append(CultureInfo.InvariantCulture, $"exec {command} cohort run-task --run {Quote(run.Folder)}\n");
        return script.ToString();
    }

    /// <summary>How this program is started again on a node: its apphost beside the assembly, else <c>dotnet slideplugin.dll</c>.</summary>
    public static string SelfCommand()
    {
        string assembly = typeof(CohortPlanner).Assembly.Location;
        string appHost = Path.Combine(Path.GetDirectoryName(assembly)!, Path.GetFileNameWithoutExtension(assembly));
        if (File.Exists(appHost))
        {
            return Quote(appHost);
        }

        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host
            : Environment.ProcessPath is { } process && Path.GetFileNameWithoutExtension(process) == "dotnet" ? process
            : "dotnet";
        return $"{Quote(dotnet)} {Quote(assembly)}";
    }

    /// <summary>A word for bash, single-quoted.</summary>
    public static string Quote(string word) => "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>The model's resolution (or the target's) and input size, for the estimates.</summary>
    public static (double Mpp, int InputSize) ModelGeometry(AnalysisModel model, CohortSettings settings) =>
        (settings.TargetMpp ?? model.Mpp ?? throw new CohortException($"Model '{model.Card.Name}' records no mpp; give --target-mpp."), model.InputSize);
}
