using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;

namespace SlidePlugin.Engine.Encoders;

/// <summary>How a slide is tiled for its features.</summary>
public sealed record FeatureOptions
{
    /// <summary>µm per pixel of the tiles; null: the encoder card's.</summary>
    public double? TargetMpp { get; init; }

    /// <summary>Tile edge in pixels at <see cref="TargetMpp"/>; null: the card's input size (no resize).</summary>
    public int? TileSize { get; init; }

    /// <summary>Minimum tissue fraction of a kept tile.</summary>
    public double MinTissueFraction { get; init; } = 0.5;

    /// <summary>Tiles encoded at once, and kept on disk as one unit of resumption.</summary>
    public int BatchSize { get; init; } = 32;
}

/// <summary>
/// A slide's features as TRIDENT and CLAM keep them, one safetensors file per slide (<c>&lt;stem&gt;.features.safetensors</c>):
/// <c>features</c> [N, D] float32 and <c>coords</c> [N, 4] int64 (level-0 x, y, width, height, in grid order), with the
/// encoder, tiling and slide in the metadata. Extraction is resumable (each batch is kept on disk until the file is
/// written), its memory does not grow with the slide, and a file whose metadata matches is reused as it is.
/// </summary>
public static class FeatureExtractor
{
    /// <summary>The file's name after the slide's stem.</summary>
    public const string FileSuffix = ".features.safetensors";

    /// <summary>The metadata key that names the file's layout version.</summary>
    public const string FormatKey = "format";

    /// <summary>The layout this code writes.</summary>
    public const string Format = "slideplugin-features-1";

    /// <summary>Where the features of <paramref name="slidePath"/> go in <paramref name="folder"/>.</summary>
    public static string PathFor(string folder, string slidePath) => Path.Combine(folder, Path.GetFileNameWithoutExtension(slidePath) + FileSuffix);

    /// <summary>
    /// Extracts (or resumes, or reuses) the features of <paramref name="slide"/> into <paramref name="folder"/>.
    /// <paramref name="progress"/> hears (tiles done, tiles in all) after each batch.
    /// </summary>
    /// <returns>The file, and whether it was already there for the same encoder, tiling and slide.</returns>
    /// <exception cref="SlideException">As for any tiling: limits, unreadable regions.</exception>
    /// <exception cref="OperationCanceledException">Cancelled: the batches written so far are kept for the next run.</exception>
    public static async Task<(string Path, bool Reused)> ExtractAsync(Slide slide, double slideMpp, TileEncoder encoder, FeatureOptions options, string folder,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1);
        (TileGrid grid, _) = TileGrid.OverTissue(slide, slideMpp, new TileGridOptions
        {
            TileSize = options.TileSize ?? encoder.Card.InputSize,
            TargetMpp = options.TargetMpp ?? encoder.Card.Mpp,
            MinTissueFraction = options.MinTissueFraction,
        }, cancellationToken: cancellationToken);
        Dictionary<string, string> metadata = MetadataOf(slide, slideMpp, encoder, grid, options);
        string path = PathFor(folder, slide.Path);
        if (File.Exists(path) && Matches(path, metadata))
        {
            return (path, true);
        }

        Directory.CreateDirectory(folder);
        string batches = path + ".batches";
        PrepareBatchFolder(batches, metadata);
        int dim = encoder.Card.OutputDim, total = grid.Tiles.Count, size = options.BatchSize;
        int batchCount = (total + size - 1) / size;
        var todo = new List<Tile>();
        for (int b = 0; b < batchCount; b++)
        {
            int count = Math.Min(size, total - (b * size));
            if (!IsComplete(BatchPath(batches, b), count * dim))
            {
                todo.AddRange(grid.Tiles.Skip(b * size).Take(count));
            }
        }

        int done = total - todo.Count;
        progress?.Report((done, total));
        var index = grid.Tiles.Select((tile, i) => (tile, i)).ToDictionary(p => p.tile, p => p.i);
        var pending = new List<Raster>(size);
        int pendingBatch = -1;
        await foreach ((Tile tile, Raster pixels) in TileReader.ReadAsync(grid, slide, (_, raster) => raster, lookahead: 2 * Environment.ProcessorCount,
            cancellationToken: cancellationToken, tiles: todo).ConfigureAwait(false))
        {
            int batch = index[tile] / size;
            pendingBatch = batch;
            pending.Add(pixels);
            if (pending.Count == Math.Min(size, total - (batch * size)))
            {
                float[] features = encoder.Encode(pending);
                AtomicFile.Write(BatchPath(batches, batch), string.Empty, temporary =>
                {
                    using var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write);
                    SafeTensors.WriteLittleEndian(file, features);
                });
                done += pending.Count;
                pending.Clear();
                progress?.Report((done, total));
            }
        }

        System.Diagnostics.Debug.Assert(pending.Count == 0, $"batch {pendingBatch} was left incomplete");
        cancellationToken.ThrowIfCancellationRequested();
        SafeTensors.Write(path, [new SafeTensorsLayout("coords", "I64", [total, 4]), new SafeTensorsLayout("features", "F32", [total, dim])], metadata, file =>
        {
            byte[] row = new byte[32];
            foreach (Tile tile in grid.Tiles)
            {
                BinaryPrimitives.WriteInt64LittleEndian(row.AsSpan(0), tile.X);
                BinaryPrimitives.WriteInt64LittleEndian(row.AsSpan(8), tile.Y);
                BinaryPrimitives.WriteInt64LittleEndian(row.AsSpan(16), tile.Width);
                BinaryPrimitives.WriteInt64LittleEndian(row.AsSpan(24), tile.Height);
                file.Write(row);
            }

            for (int b = 0; b < batchCount; b++)
            {
                using FileStream part = File.OpenRead(BatchPath(batches, b));
                part.CopyTo(file);
            }
        });
        Directory.Delete(batches, recursive: true);
        return (path, false);
    }

    /// <summary>The metadata that identifies a features file: the encoder's weights, the tiling and the slide.</summary>
    private static Dictionary<string, string> MetadataOf(Slide slide, double slideMpp, TileEncoder encoder, TileGrid grid, FeatureOptions options)
    {
        string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
        FileInfo file = new(slide.Path);
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [FormatKey] = Format,
            ["encoder"] = encoder.Card.Name,
            ["encoder_sha256"] = encoder.Sha256,
            ["encoder_input_size"] = encoder.Card.InputSize.ToString(CultureInfo.InvariantCulture),
            ["output_dim"] = encoder.Card.OutputDim.ToString(CultureInfo.InvariantCulture),
            ["mpp"] = Number(grid.TargetMpp),
            ["tile_size"] = grid.TileSize.ToString(CultureInfo.InvariantCulture),
            ["level0_tile_size"] = Number(grid.Level0TileSize),
            ["min_tissue_fraction"] = Number(options.MinTissueFraction),
            ["tile_count"] = grid.Tiles.Count.ToString(CultureInfo.InvariantCulture),
            ["slide"] = Path.GetFileName(slide.Path),
            ["slide_mpp"] = Number(slideMpp),
            // OpenSlide's quickhash where the format has one; else the file's size and time, as the analysis store keys it.
            ["slide_quickhash"] = slide.Properties.GetValueOrDefault("openslide.quickhash-1")
                ?? string.Create(CultureInfo.InvariantCulture, $"file:{file.Length}:{file.LastWriteTimeUtc.Ticks}"),
        };
    }

    private static bool Matches(string path, Dictionary<string, string> metadata)
    {
        try
        {
            IReadOnlyDictionary<string, string> existing = SafeTensors.ReadMetadata(path);
            return metadata.All(m => existing.TryGetValue(m.Key, out string? value) && value == m.Value);
        }
        catch (SafeTensorsException)
        {
            return false; // damaged: extract again
        }
    }

    /// <summary>Keeps the batches of an interrupted run for the same metadata; anything else there is stale.</summary>
    private static void PrepareBatchFolder(string batches, Dictionary<string, string> metadata)
    {
        string plan = Path.Combine(batches, "plan.json");
        string expected = JsonSerializer.Serialize(metadata.OrderBy(m => m.Key, StringComparer.Ordinal).ToDictionary());
        if (Directory.Exists(batches) && (!File.Exists(plan) || File.ReadAllText(plan) != expected))
        {
            Directory.Delete(batches, recursive: true);
        }

        Directory.CreateDirectory(batches);
        if (!File.Exists(plan))
        {
            AtomicFile.WriteAllText(plan, expected);
        }
    }

    private static string BatchPath(string batches, int batch) => Path.Combine(batches, $"batch-{batch:D7}.f32");

    private static bool IsComplete(string path, long floats) => File.Exists(path) && new FileInfo(path).Length == floats * sizeof(float);
}
