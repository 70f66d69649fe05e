using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using SlidePlugin.Engine.IO;

namespace SlidePlugin.Sidecar.Cohorts;

/// <summary>How every slide of a cohort is analysed: the options of <c>analyze</c>, fixed when the run is planned.</summary>
internal sealed record CohortSettings
{
    /// <summary>Model checkpoint (.safetensors with its card), absolute.</summary>
    public required string Model { get; init; }

    /// <summary>Tile encoder (NAME.onnx with its card) for a head on features; null for a patch model.</summary>
    public string? Encoder { get; init; }

    /// <summary>Device for the encoder ("cpu", "cuda", "cuda:1").</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Resolution of slides that record none, µm/px.</summary>
    public double? SlideMpp { get; init; }

    /// <summary>Tile at this resolution instead of the card's.</summary>
    public double? TargetMpp { get; init; }

    /// <summary>Tile edge at the target resolution.</summary>
    public int? TileSize { get; init; }

    /// <summary>Minimum tissue fraction of a scored tile.</summary>
    public double MinTissue { get; init; } = 0.5;
}

/// <summary>One slide of a cohort, a row of <c>manifest.csv</c>.</summary>
/// <param name="Index">The array task that analyses it (0-based).</param>
/// <param name="Slide">Absolute path of the slide.</param>
/// <param name="Folder">Its folder under <c>RUN/slides/</c>: the slide's stem, made unique.</param>
/// <param name="Width">Level-0 width in pixels; 0 when the slide could not be opened at planning.</param>
/// <param name="Height">Level-0 height in pixels.</param>
/// <param name="EstimatedTiles">Grid cells at the target resolution before the tissue filter (an upper bound of the tiles scored).</param>
/// <param name="Status">"planned", or why the slide could not be opened at planning (its task will fail saying so).</param>
internal sealed record CohortSlide(int Index, string Slide, string Folder, long Width, long Height, long EstimatedTiles, string Status);

/// <summary>What a task records about its slide in <c>RUN/slides/&lt;folder&gt;/status.json</c>, written atomically.</summary>
/// <param name="State">running, done, failed or interrupted.</param>
/// <param name="Reason">Why it failed or stopped; null otherwise.</param>
/// <param name="Host">The machine the task ran on.</param>
/// <param name="Job">Slurm's <c>ARRAYJOBID_TASKID</c>, when under Slurm.</param>
/// <param name="Time">When the state was written (UTC, ISO 8601).</param>
internal sealed record CohortSlideStatus(string State, string? Reason, string Host, string? Job, string Time);

/// <summary>A slide and what its task left: the result when done, else its last status (both null: not started).</summary>
internal sealed record CohortOutcome(CohortSlide Slide, CohortSlideResult? Result, CohortSlideStatus? Status)
{
    /// <summary>done, running, failed, interrupted or "not started".</summary>
    public string State => Result is not null ? "done" : Status?.State ?? "not started";
}

/// <summary>A slide's outcome in <c>RUN/slides/&lt;folder&gt;/result.json</c>: written last, atomically, so its presence means done.</summary>
internal sealed record CohortSlideResult(string Slide, string Prediction, IReadOnlyList<string> Classes, IReadOnlyList<float> Probabilities, int Tiles, double Seconds);

/// <summary>
/// The files of a cohort run folder: <c>cohort.json</c> (settings), <c>manifest.csv</c> (slides), <c>cohort.sbatch</c>,
/// and one folder per slide with its own analysis store. Nothing is shared between tasks but read-only files, so many
/// nodes may write into a run on a network file system (where SQLite's locking is not safe) without a lock.
/// </summary>
internal sealed class CohortRun
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
    };

    /// <summary>Manifest columns, in order.</summary>
    private const string ManifestHeader = "index,slide,folder,width,height,estimated_tiles,status";

    public CohortRun(string folder) => Folder = Path.GetFullPath(folder);

    /// <summary>The run folder.</summary>
    public string Folder { get; }

    public string SettingsPath => Path.Combine(Folder, "cohort.json");

    public string ManifestPath => Path.Combine(Folder, "manifest.csv");

    public string BatchScriptPath => Path.Combine(Folder, "cohort.sbatch");

    public string TablePath => Path.Combine(Folder, "cohort.csv");

    public string LogFolder => Path.Combine(Folder, "logs");

    /// <summary>The folder a slide's task writes into.</summary>
    public string SlideFolder(CohortSlide slide) => Path.Combine(Folder, "slides", slide.Folder);

    public static string StatusPath(string slideFolder) => Path.Combine(slideFolder, "status.json");

    public static string ResultPath(string slideFolder) => Path.Combine(slideFolder, "result.json");

    public static string StorePath(string slideFolder) => Path.Combine(slideFolder, "analysis.sqlite");

    /// <summary>Writes the settings and the manifest (each atomically).</summary>
    public void Write(CohortSettings settings, IReadOnlyList<CohortSlide> slides)
    {
        Directory.CreateDirectory(Folder);
        AtomicFile.WriteAllText(SettingsPath, JsonSerializer.Serialize(settings, Json));
        var csv = new StringBuilder(ManifestHeader + "\n");
        foreach (CohortSlide s in slides)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{s.Index},{CsvFields.Quote(s.Slide)},{CsvFields.Quote(s.Folder)},{s.Width},{s.Height},{s.EstimatedTiles},{CsvFields.Quote(s.Status)}\n");
        }

        AtomicFile.WriteAllText(ManifestPath, csv.ToString());
    }

    /// <exception cref="CohortException">No run here, or its files are damaged.</exception>
    public CohortSettings ReadSettings()
    {
        RequireRun();
        try
        {
            return JsonSerializer.Deserialize<CohortSettings>(File.ReadAllText(SettingsPath), Json)
                ?? throw new CohortException($"'{SettingsPath}' is empty.");
        }
        catch (JsonException e)
        {
            throw new CohortException($"'{SettingsPath}' is not a cohort's settings: {e.Message}");
        }
    }

    /// <exception cref="CohortException">No run here, or a damaged manifest.</exception>
    public IReadOnlyList<CohortSlide> ReadManifest()
    {
        RequireRun();
        string[] lines = File.ReadAllLines(ManifestPath);
        if (lines.Length == 0 || lines[0] != ManifestHeader)
        {
            throw new CohortException($"'{ManifestPath}' does not start with the header '{ManifestHeader}'.");
        }

        var slides = new List<CohortSlide>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0)
            {
                continue;
            }

            IReadOnlyList<string> f = CsvFields.Split(lines[i]);
            if (f.Count != 7 || !int.TryParse(f[0], CultureInfo.InvariantCulture, out int index) || index != slides.Count
                || !long.TryParse(f[3], CultureInfo.InvariantCulture, out long width) || !long.TryParse(f[4], CultureInfo.InvariantCulture, out long height)
                || !long.TryParse(f[5], CultureInfo.InvariantCulture, out long tiles))
            {
                throw new CohortException($"'{ManifestPath}' line {i + 1} is not a manifest row (index {slides.Count} expected): '{lines[i]}'.");
            }

            slides.Add(new CohortSlide(index, f[1], f[2], width, height, tiles, f[6]));
        }

        return slides;
    }

    /// <summary>Every slide of the manifest with what its task left, in manifest order.</summary>
    public IReadOnlyList<CohortOutcome> Outcomes() =>
        [.. ReadManifest().Select(s => new CohortOutcome(s, ReadResult(SlideFolder(s)), ReadStatus(SlideFolder(s))))];

    public static CohortSlideStatus? ReadStatus(string slideFolder) => ReadJson<CohortSlideStatus>(StatusPath(slideFolder));

    public static CohortSlideResult? ReadResult(string slideFolder) => ReadJson<CohortSlideResult>(ResultPath(slideFolder));

    public static void WriteStatus(string slideFolder, CohortSlideStatus status) =>
        AtomicFile.WriteAllText(StatusPath(slideFolder), JsonSerializer.Serialize(status, Json));

    public static void WriteResult(string slideFolder, CohortSlideResult result) =>
        AtomicFile.WriteAllText(ResultPath(slideFolder), JsonSerializer.Serialize(result, Json));

    private void RequireRun()
    {
        if (!File.Exists(SettingsPath) || !File.Exists(ManifestPath))
        {
            throw new CohortException($"'{Folder}' holds no cohort run (no cohort.json and manifest.csv): make one with 'slideplugin cohort plan'.");
        }
    }

    private static T? ReadJson<T>(string path) where T : class
    {
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize<T>(File.ReadAllText(path), Json) : null;
        }
        catch (JsonException e)
        {
            throw new CohortException($"'{path}' is damaged: {e.Message}");
        }
    }
}

/// <summary>A cohort run folder that is missing, damaged or asked for something it does not hold.</summary>
internal sealed class CohortException(string message) : Exception(message);
