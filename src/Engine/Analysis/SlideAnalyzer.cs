using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Engine.Tissue;

namespace SlidePlugin.Engine.Analysis;

/// <summary>
/// The main job: slide → tissue tiles at the model's mpp → patches → model → per-tile scores → slide prediction and
/// attention. Tiles are read ahead on worker threads while the previous batch is scored; each batch is committed to the
/// <see cref="AnalysisStore"/> (scores, per-tile probabilities, and the running attention pooling that includes it) before
/// it is reported, so a stopped analysis resumes from the tiles already in, and memory stays flat in slide size. When the
/// last tile is in, attention is the softmax of all scores and the slide embedding M = Σ aₖ hₖ comes from the pooling state.
/// </summary>
public sealed class SlideAnalyzer
{
    private readonly AnalysisStore _store;
    private readonly AnalysisModel _model;
    private readonly object _modelLock = new();

    /// <summary>Creates an analyzer of <paramref name="model"/> writing to <paramref name="store"/>.</summary>
    public SlideAnalyzer(AnalysisStore store, AnalysisModel model)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(model);
        _store = store;
        _model = model;
    }

    /// <summary>The model scoring the slides.</summary>
    public AnalysisModel Model => _model;

    /// <summary>
    /// The key of an analysis: the slide's identity (OpenSlide quickhash, or path, size and time of the file), the model's
    /// weights hash and every option that changes the result.
    /// </summary>
    public string KeyOf(Slide slide, double slideMpp, AnalysisOptions options)
    {
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(options);
        var file = new FileInfo(slide.Path);
        string identity = slide.Properties.GetValueOrDefault("openslide.quickhash-1")
                          ?? string.Create(CultureInfo.InvariantCulture, $"{file.FullName}|{file.Length}|{file.LastWriteTimeUtc:O}");
        string parameters = JsonSerializer.Serialize(new
        {
            identity,
            model = _model.Card.WeightsSha256,
            encoder = _model.Encoder?.Sha256,
            slide_mpp = slideMpp,
            target_mpp = TargetMppOf(options),
            tile = TileSizeOf(options),
            options.Overlap,
            options.MinTissueFraction,
            roi = options.RegionOfInterest,
        });
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(parameters)))[..32];
    }

    /// <summary>
    /// Analyses <paramref name="slide"/> (level-0 resolution <paramref name="slideMpp"/>), reporting <see cref="AnalysisEvent"/>s
    /// as it goes. A finished analysis with the same key is answered from the store without touching the model; an
    /// unfinished one continues where it stopped.
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled; every batch reported before is in the store.</exception>
    /// <exception cref="SlideException">A tile could not be read.</exception>
    public async Task<AnalysisResult> AnalyzeAsync(Slide slide, double slideMpp, AnalysisOptions options, Action<AnalysisEvent>? report = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1);
        var clock = Stopwatch.StartNew();
        string key = KeyOf(slide, slideMpp, options);
        if (_store.Load(key) is { } stored)
        {
            report?.Invoke(new AnalysisEvent.Started(stored.Header));
            report?.Invoke(new AnalysisEvent.Completed(stored));
            return stored;
        }

        var timings = new TimingCounters();
        (TileGrid grid, IDisposable? heldLevel) = await Task.Run(() => BuildGrid(slide, slideMpp, options, cancellationToken), cancellationToken).ConfigureAwait(false);
        using IDisposable? releaseHeldLevel = heldLevel;
        timings.Tissue = clock.Elapsed.TotalSeconds;
        if (grid.Tiles.Count == 0)
        {
            throw new ArgumentException($"No tissue tile of {grid.TileSize} px at {grid.TargetMpp:0.###} µm/px in '{Path.GetFileName(slide.Path)}' (minimum tissue fraction {options.MinTissueFraction}).");
        }

        HashSet<int> done = _store.ScoredIndices(key);
        int embeddingSize = _model.Card.Spec.EmbeddingSize, branches = _model.Card.Spec.Branches;
        AttentionPooling pooling = _store.Pooling(key, embeddingSize, branches) ?? new AttentionPooling(embeddingSize, branches);
        if (pooling.Count != done.Count)
        {
            throw new AnalysisStoreCorruptException(_store.Path, $"analysis {key} holds {done.Count} tiles but its pooling state counts {pooling.Count}");
        }

        var header = new AnalysisHeader(key, slide.Path, slide.Dimensions.Width, slide.Dimensions.Height, slideMpp, _model.Card.Name, _model.Card.WeightsSha256,
            _model.Card.Classes, grid.TargetMpp, grid.TileSize, grid.Level0TileSize, grid.Columns, grid.Rows, grid.Tiles.Count, done.Count);
        _store.Begin(header);
        report?.Invoke(new AnalysisEvent.Started(header));

        var index = new Dictionary<Tile, int>(grid.Tiles.Count, ReferenceEqualityComparer.Instance);
        for (int i = 0; i < grid.Tiles.Count; i++)
        {
            index[grid.Tiles[i]] = i;
        }

        // Batches are cut at multiples of the batch size in the reading order of the whole grid, so a resumed run puts
        // every tile into the batch an uninterrupted run would have: a tile's score then has the same bits (BLAS kernels
        // round a row differently by where it falls in the batch).
        Tile[] order = TileReader.InBlockOrder(grid.Tiles, TileReader.SmallTileBlock);
        var position = new Dictionary<Tile, int>(order.Length, ReferenceEqualityComparer.Instance);
        for (int i = 0; i < order.Length; i++)
        {
            position[order[i]] = i;
        }

        TileGrid remaining = grid with { Tiles = [.. order.Where(t => !done.Contains(index[t]))] };
        timings.Scored = done.Count;
        // Batch n is committed (and then reported) while batch n + 1 runs through the model.
        Task commit = Task.CompletedTask;
        try
        {
            await foreach (TileBatch batch in TileReader.ReadBatchesAsync(remaining, slide, _model.InputSize, t => position[t] / options.BatchSize,
                               TileReader.SmallTileBlock, lookaheadBlocks: Math.Max(2, options.BatchSize / 32), timings.AddRead, cancellationToken).ConfigureAwait(false))
            {
                commit = await ScoreBatchAsync(key, batch, index, pooling, commit, grid.Tiles.Count, timings, report, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            // A batch the model finished is committed even when the run stops: nothing scored is thrown away.
            await commit.ConfigureAwait(false);
        }

        double beforeFinish = clock.Elapsed.TotalSeconds;
        AnalysisResult result = await Task.Run(() => Complete(header, pooling, clock), cancellationToken).ConfigureAwait(false);
        result = result with { Timings = timings.ToTimings(clock.Elapsed.TotalSeconds - beforeFinish) };
        report?.Invoke(new AnalysisEvent.Completed(result));
        return result;
    }

    /// <summary>
    /// Scores a bag of patches the caller chose (viewers that tile themselves): per-patch raw score and attention, and the
    /// bag prediction. Patches are RGB rasters of the model's patch size (others are resized).
    /// </summary>
    public (float[] Probabilities, float[] Scores, float[] Attention) ScoreBag(IReadOnlyList<Raster> patches)
    {
        ArgumentNullException.ThrowIfNull(patches);
        if (patches.Count == 0)
        {
            throw new ArgumentException("The bag is empty: send at least one patch.", nameof(patches));
        }

        int patchSize = _model.InputSize;
        byte[] pixels = [.. patches.SelectMany(p => PatchBag.PatchOf(p, patchSize).Pixels)];
        return RunInstances(pixels, patches.Count, (h, scores, _) =>
        {
            using MilOutput output = _model.Network.Aggregate(h, scores.Detach());
            return (output.Probabilities.Data.ToArray(), output.AttentionScores.Data.ToArray(), output.Attention.Data.ToArray());
        });
    }

    /// <summary>
    /// The percentile of each score among all of them, as SciPy's <c>percentileofscore(kind="rank")</c> (what CLAM's
    /// heatmaps use): ties get the mean of their weak and strict percentiles.
    /// </summary>
    public static double[] Percentiles(IReadOnlyList<float> scores)
    {
        ArgumentNullException.ThrowIfNull(scores);
        float[] sorted = [.. scores];
        Array.Sort(sorted);
        var result = new double[scores.Count];
        for (int i = 0; i < scores.Count; i++)
        {
            int left = CountBelow(sorted, scores[i], orEqual: false), right = CountBelow(sorted, scores[i], orEqual: true);
            result[i] = (left + right + (right > left ? 1 : 0)) * 50.0 / scores.Count;
        }

        return result;
    }

    private double TargetMppOf(AnalysisOptions options) =>
        options.TargetMpp ?? _model.Mpp
        ?? throw new ArgumentException($"Model '{_model.Card.Name}' records no mpp; give the resolution to tile at (target mpp).");

    private int TileSizeOf(AnalysisOptions options) => options.TileSize ?? _model.InputSize;

    /// <summary>
    /// Levels up to this many pixels (64 MiB of RGBA) are held in memory for the analysis when the tissue view and the tiles
    /// both come from them (small slides such as CMU-1-Small-Region: one decode of the level instead of two).
    /// </summary>
    private const long MaxHeldLevelPixels = 1L << 24;

    /// <summary>The tile grid on the slide's tissue, and the level held for reading its tiles (null when none is); the caller disposes it.</summary>
    private (TileGrid Grid, IDisposable? HeldLevel) BuildGrid(Slide slide, double slideMpp, AnalysisOptions options, CancellationToken cancellationToken)
    {
        var gridOptions = new TileGridOptions
        {
            TileSize = TileSizeOf(options),
            Overlap = options.Overlap,
            TargetMpp = TargetMppOf(options),
            MinTissueFraction = options.MinTissueFraction,
            RegionOfInterest = options.RegionOfInterest,
        };
        TileGrid.CheckLimits(slide, slideMpp, gridOptions); // before the tissue step: an absurd grid costs nothing
        int readLevel = TileGrid.ReadLevelFor(slide, slideMpp, gridOptions);
        (long levelWidth, long levelHeight) = slide.LevelDimensions[readLevel];
        IDisposable? held = TissueDetector.ViewLevel(slide, slideMpp) == readLevel && levelWidth * levelHeight <= MaxHeldLevelPixels
            ? slide.HoldLevel(readLevel)
            : null;
        try
        {
            return (TileGrid.OverTissue(slide, slideMpp, gridOptions, cancellationToken: cancellationToken).Grid, held);
        }
        catch
        {
            held?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs one batch through the model, then returns the task that pools it into <paramref name="pooling"/>, commits it to the
    /// store and reports it, chained after <paramref name="previousCommit"/> so pooling, commits and reports keep their order.
    /// </summary>
    private async Task<Task> ScoreBatchAsync(string key, TileBatch batch, Dictionary<Tile, int> index, AttentionPooling pooling, Task previousCommit,
        int total, TimingCounters timings, Action<AnalysisEvent>? report, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Tile[] items = batch.Tiles;
        (TileScore[] tiles, float[] embeddings, float[] scores) = await Task.Run(() =>
        {
            long modelStart = Stopwatch.GetTimestamp();
            return RunInstances(batch.Pixels, items.Length, (h, scores, probabilities) =>
            {
                int k = probabilities.Shape[1], branches = scores.Length / items.Length;
                var result = new TileScore[items.Length];
                for (int i = 0; i < items.Length; i++)
                {
                    Tile t = items[i];
                    // CLAM-MB streams the last class's branch (a binary task's positive class); Complete gives the predicted class's.
                    float[]? branchScores = branches == 1 ? null : scores.Data.Slice(i * branches, branches).ToArray();
                    result[i] = new TileScore(index[t], t.X, t.Y, t.Width, t.Height, scores.Data[(i * branches) + branches - 1],
                        probabilities.Data.Slice(i * k, k).ToArray(), branchScores);
                }

                timings.Model += Stopwatch.GetElapsedTime(modelStart).TotalSeconds;
                return (result, h.Data.ToArray(), scores.Data.ToArray());
            });
        }, CancellationToken.None).ConfigureAwait(false);

        await previousCommit.ConfigureAwait(false);
        return Task.Run(() =>
        {
            long storeStart = Stopwatch.GetTimestamp();
            // Committed before it is reported: what a viewer has seen survives a crash.
            pooling.Add(scores, embeddings);
            _store.AddTiles(key, tiles, pooling);
            timings.Store += Stopwatch.GetElapsedTime(storeStart).TotalSeconds;
            report?.Invoke(new AnalysisEvent.Scored(tiles, Interlocked.Add(ref timings.Scored, tiles.Length), total));
        }, CancellationToken.None);
    }

    private AnalysisResult Complete(AnalysisHeader header, AttentionPooling pooling, Stopwatch clock)
    {
        int branches = pooling.Branches;
        (int[] indices, float[] allScores) = _store.Scores(header.Key, branches);                   // [N] or [N, B]
        if (indices.Length != header.TileCount || pooling.Count != header.TileCount)
        {
            throw new InvalidOperationException($"Analysis {header.Key}: {indices.Length} of {header.TileCount} tiles are stored, {pooling.Count} pooled.");
        }

        float[] pooled = pooling.Pooled();                                                           // M = Σ aₖ hₖ, [B, L]
        float[] probabilities;
        lock (_modelLock)
        {
            using GradMode.NoGradScope noGrad = GradMode.NoGrad();
            using Tensor m = Tensor.FromData(pooled, branches, pooled.Length / branches);            // [B, L]
            probabilities = _model.Network.PredictPooled(m);                                         // [K]
        }

        int predicted = Array.IndexOf(probabilities, probabilities.Max());
        // The tiles' attention is the predicted class's branch for CLAM-MB (as CLAM's heatmaps), else the only one.
        int branch = branches == 1 ? 0 : predicted;
        float[] scores = [.. Enumerable.Range(0, indices.Length).Select(i => allScores[(i * branches) + branch])];
        double[] attention = [.. scores.Select(z => pooling.AttentionOf(z, branch))];               // a = softmax(scores), [N]
        double[] percentiles = Percentiles(scores);
        string finished = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        double seconds = clock.Elapsed.TotalSeconds;
        _store.Complete(header.Key, indices, scores, attention, percentiles, new StoredResult(probabilities, predicted, seconds, finished));
        return _store.Load(header.Key)! with { FromStore = false, Seconds = seconds };
    }

    /// <summary>Time counters of one run; reads are added from the reader threads.</summary>
    private sealed class TimingCounters
    {
        private long _readTicks;

        /// <summary>Tiles in the store so far (the running count reports carry).</summary>
        public int Scored;

        public double Tissue { get; set; }

        public double Model { get; set; }

        public double Store { get; set; }

        public void AddRead(TimeSpan elapsed) => Interlocked.Add(ref _readTicks, elapsed.Ticks);

        public AnalysisTimings ToTimings(double finish) => new(Tissue, TimeSpan.FromTicks(Interlocked.Read(ref _readTicks)).TotalSeconds, Model, Store, finish);
    }

    /// <summary>
    /// The model's per-instance outputs for <paramref name="count"/> patches of interleaved RGB <paramref name="pixels"/>,
    /// read by <paramref name="read"/> before they are freed: embeddings H [N, L], raw attention scores [N] and what the
    /// classifier makes of each instance alone [N, K]. One caller at a time (the model's buffers are shared).
    /// </summary>
    private T RunInstances<T>(byte[] pixels, int count, Func<Tensor, Tensor, Tensor, T> read)
    {
        lock (_modelLock)
        {
            using GradMode.NoGradScope noGrad = GradMode.NoGrad();
            using Tensor x = InputOf(pixels, count);                                                                           // [N, 3, P, P] or [N, D]
            using Tensor h = _model.Network.Embed(x);                                                                          // [N, L]
            using Tensor scores = _model.Network.Score(h);                                                                     // [N]
            using Tensor probabilities = _model.Network.ClassProbabilities(h);                                                 // [N, K]
            return read(h, scores, probabilities);
        }
    }

    private static PatchNormalization NormalizationOf(AnalysisModel model) => new(model.Card.InputMean, model.Card.InputStd);

    /// <summary>
    /// What the network takes for <paramref name="count"/> tiles of interleaved RGB: the encoder's features [N, D] for a head
    /// on features, else the normalised patches [N, 3, P, P].
    /// </summary>
    private Tensor InputOf(byte[] pixels, int count)
    {
        if (_model.Encoder is not { } encoder)
        {
            return new PatchBag(pixels, count, _model.Card.Spec.PatchSize, 3).ToTensor(NormalizationOf(_model));
        }

        return Tensor.FromData(encoder.Encode(pixels, count), count, encoder.Card.OutputDim);
    }

    /// <summary>How far a client's patches may be from the model's resolution, either way, to be resampled to it (ScoreBag).</summary>
    public const double MaxPatchResampling = 2;

    /// <summary>
    /// The edge, in pixels, of a client's patch at <paramref name="patchMpp"/> µm/px that shows what the model's patches
    /// show: patch size × model mpp / patch mpp. Without a patch mpp, the model's own patch size (the patch is taken as at
    /// the model's mpp: what clients that tile at the card's size and mpp send). Null for a model that records no mpp:
    /// there is no scale to hold patches to, and any size is resized to its patch size.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// <paramref name="patchMpp"/> is not a positive number, or more than <see cref="MaxPatchResampling"/>x finer or coarser
    /// than the model's mpp; the message names the size and mpp the model takes.
    /// </exception>
    public double? PatchEdgeAt(double? patchMpp)
    {
        if (patchMpp is { } given && !(double.IsFinite(given) && given > 0))
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"mpp {given} is not a resolution: give the patches' µm per pixel, a positive number."));
        }

        if (_model.Mpp is not { } modelMpp)
        {
            return null;
        }

        if (patchMpp is not { } mpp)
        {
            return _model.InputSize;
        }

        double factor = modelMpp / mpp, edge = _model.InputSize * factor;
        if (factor < 1 / MaxPatchResampling || factor > MaxPatchResampling)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"Patches at {mpp:0.####} µm/px are {Math.Max(factor, 1 / factor):0.##}x {(factor > 1 ? "finer" : "coarser")} than model '{_model.Card.Name}' takes " +
                $"({_model.InputSize}x{_model.InputSize} px at {modelMpp:0.####} µm/px, {edge:0.#} px at {mpp:0.####} µm/px); patches are resampled at most " +
                $"{MaxPatchResampling}x either way: send them at {modelMpp / MaxPatchResampling:0.####} to {modelMpp * MaxPatchResampling:0.####} µm/px."));
        }

        return edge;
    }

    /// <summary>
    /// A client's patch at <paramref name="patchMpp"/> µm/px as the model takes it (ScoreBag): checked to be square and of
    /// <see cref="PatchEdgeAt"/> pixels (within one, for edges that are not whole), then made RGB (grey spread, alpha on
    /// white) and resampled to the model's patch size. <paramref name="what"/> names it in errors ("Patch 3").
    /// </summary>
    /// <exception cref="ArgumentException">The mpp is refused (<see cref="PatchEdgeAt"/>), or the patch has another size; the message names the size and mpp the model takes.</exception>
    public Raster ToPatch(Raster raster, double? patchMpp, string what = "The patch")
    {
        ArgumentNullException.ThrowIfNull(raster);
        if (PatchEdgeAt(patchMpp) is { } edge && (raster.Width != raster.Height || Math.Abs(raster.Width - edge) >= 1))
        {
            int size = _model.InputSize;
            double modelMpp = _model.Mpp!.Value;
            throw new ArgumentException(patchMpp is { } mpp
                ? string.Create(CultureInfo.InvariantCulture,
                    $"{what} is {raster.Width}x{raster.Height} px; at {mpp:0.####} µm/px model '{_model.Card.Name}' takes {edge:0.#}x{edge:0.#} px patches ({size}x{size} px at {modelMpp:0.####} µm/px).")
                : string.Create(CultureInfo.InvariantCulture,
                    $"{what} is {raster.Width}x{raster.Height} px and the request gives no mpp: model '{_model.Card.Name}' takes {size}x{size} px patches at {modelMpp:0.####} µm/px; " +
                    $"send that size, or give the patches' mpp (patches within {MaxPatchResampling}x of it are resampled)."));
        }

        return PatchBag.PatchOf(raster, _model.InputSize);
    }

    /// <summary>How many of <paramref name="sorted"/> are below <paramref name="value"/> (or at most it, with <paramref name="orEqual"/>).</summary>
    private static int CountBelow(float[] sorted, float value, bool orEqual)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (sorted[mid] < value || (orEqual && sorted[mid] == value))
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }
}
