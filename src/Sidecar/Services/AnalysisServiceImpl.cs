using Grpc.Core;
using System.Collections.Concurrent;
using Google.Protobuf;
using SlidePlugin.Engine.Analysis;
using SlidePlugin.Engine.Encoders;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Grpc;
using EngineHeader = SlidePlugin.Engine.Analysis.AnalysisHeader;
using EngineResult = SlidePlugin.Engine.Analysis.AnalysisResult;
using ProtoHeader = SlidePlugin.Protos.V1.AnalysisHeader;
using ProtoResult = SlidePlugin.Protos.V1.AnalysisResult;

using Contract = SlidePlugin.Protos.V1;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// <c>slideplugin.v1.AnalysisService</c>: slides scored by <see cref="SlideAnalyzer"/>, results in one
/// <see cref="AnalysisStore"/> under the work folder. Analyses run one at a time (each uses every core) from a bounded
/// queue; calls for an analysis already running watch it instead of starting another.
/// </summary>
public sealed class AnalysisServiceImpl : Contract.AnalysisService.AnalysisServiceBase, IDisposable
{
    /// <summary>Tiles per final_tiles message: about 0.5 MiB.</summary>
    public const int FinalTilesPerMessage = 10_000;

    /// <summary>The most patches one ScoreBag call scores.</summary>
    public const int MaxBagPatches = 65_536;

    /// <summary>The most pixels of one ScoreBag patch before it is resized to the model's patch size.</summary>
    public const long MaxPatchPixels = 4096L * 4096;

    private readonly SlideRoots _roots;
    private readonly ModelRoots _models;
    private readonly Lazy<AnalysisStore> _store;
    private readonly string _defaultModelPath;
    private readonly int _capacity;
    private readonly ConcurrentDictionary<string, SlideAnalyzer> _analyzers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AnalysisJob> _jobs = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _compute = new(1, 1);
    private readonly EncoderDevice _device;
    private readonly ConcurrentBag<TileEncoder> _encoders = [];

    /// <summary>Creates the service: slides under <paramref name="roots"/>, models under <paramref name="models"/>, the store under <paramref name="workDirectory"/>.</summary>
    /// <param name="roots">Where slides may be read.</param>
    /// <param name="workDirectory">Where the store (analyses.sqlite) lives.</param>
    /// <param name="defaultModelPath">The model used when a request names none (the server's choice: not checked against the roots).</param>
    /// <param name="capacity">Analyses running or waiting at once; more are refused with RESOURCE_EXHAUSTED.</param>
    /// <param name="device">Where tile encoders run (serve --device).</param>
    /// <param name="models">Where the models and encoders requests name may be read; null: the work folder (created), where training writes.</param>
    public AnalysisServiceImpl(SlideRoots roots, string workDirectory, string defaultModelPath, int capacity = 4, EncoderDevice device = default, ModelRoots? models = null)
    {
        ArgumentNullException.ThrowIfNull(roots);
        ArgumentException.ThrowIfNullOrEmpty(workDirectory);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _roots = roots;
        _models = models ?? new ModelRoots([Directory.CreateDirectory(workDirectory).FullName]);
        _defaultModelPath = defaultModelPath;
        _capacity = capacity;
        _device = device;
        string storePath = Path.Combine(Path.GetFullPath(workDirectory), "analyses.sqlite");
        // Opened on first use, and again on each use until it opens: a damaged store fails the calls that need it
        // (DATA_LOSS naming the file) instead of the server's start, and a replaced file is picked up without a restart.
        _store = new Lazy<AnalysisStore>(() => new AnalysisStore(storePath), LazyThreadSafetyMode.PublicationOnly);
    }

    /// <summary>The store of results.</summary>
    /// <exception cref="AnalysisStoreCorruptException">The store file is damaged.</exception>
    public AnalysisStore Store => _store.Value;

    /// <summary>Binds the service's methods.</summary>
    public void BindTo(GrpcServiceRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.Add(this);
    }

    /// <inheritdoc />
    public override Task AnalyzeSlide(AnalyzeSlideRequest request, IServerStreamWriter<AnalyzeSlideResponse> responseStream, ServerCallContext context) =>
        AnalyzeSlideAsync(request, responseStream, context);

    /// <inheritdoc />
    public override Task ScoreBag(IAsyncStreamReader<ScoreBagRequest> requestStream, IServerStreamWriter<ScoreBagResponse> responseStream, ServerCallContext context) =>
        ScoreBagAsync(requestStream, responseStream, context);

    /// <inheritdoc />
    public override Task<GetAnalysisResponse> GetAnalysis(GetAnalysisRequest request, ServerCallContext context) => Task.FromResult(GetAnalysis(request));

    /// <inheritdoc />
    public override Task<ListAnalysesResponse> ListAnalyses(ListAnalysesRequest request, ServerCallContext context) => Task.FromResult(ListAnalyses());

    /// <inheritdoc />
    public override Task<ListModelsResponse> ListModels(ListModelsRequest request, ServerCallContext context) =>
        Task.Run(ListModels, context.CancellationToken); // walks folders and reads cards: off the request thread

    /// <inheritdoc />
    public override Task ExportAnalysis(ExportAnalysisRequest request, IServerStreamWriter<ExportAnalysisResponse> responseStream, ServerCallContext context) =>
        ExportAnalysisAsync(request, responseStream, context);

    /// <inheritdoc />
    public override async Task<Google.Api.HttpBody> DownloadAnalysis(DownloadAnalysisRequest request, ServerCallContext context)
    {
        AnalysisExportFormat format = AnalysisFiles.Parse(request.Format) ?? throw new RpcException(new Status(StatusCode.InvalidArgument,
            $"format '{request.Format}' is not an export format: {string.Join(", ", AnalysisFiles.Formats.Select(AnalysisFiles.NameOf))}."));
        EngineResult result = Stored(request.Key);
        byte[] bytes = await Task.Run(() => Export(result, format), context.CancellationToken).ConfigureAwait(false);
        return new Google.Api.HttpBody { ContentType = AnalysisFiles.MediaTypeOf(format), Data = ByteString.CopyFrom(bytes) };
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _compute.Dispose();
        foreach (TileEncoder encoder in _encoders)
        {
            encoder.Dispose();
        }
    }

    private async Task AnalyzeSlideAsync(AnalyzeSlideRequest request, IServerStreamWriter<AnalyzeSlideResponse> responses, ServerCallContext context)
    {
        SlideAnalyzer analyzer = AnalyzerFor(request.ModelPath, request.EncoderPath);
        AnalysisOptions options = OptionsOf(request);
        using Slide slide = _roots.OpenSlide(request.Path);
        string slidePath = slide.Path;
        double mpp;
        string key;
        try
        {
            mpp = slide.RequireMpp(request.HasMppOverride ? request.MppOverride : null);
            key = analyzer.KeyOf(slide, mpp, options);
        }
        catch (Exception e) when (SlideStatus.From(e) is { } status)
        {
            throw new RpcException(status);
        }

        AnalysisJob job = JoinOrStart(key, analyzer, slidePath, mpp, options);
        try
        {
            await foreach (AnalysisEvent e in job.WatchAsync(context.CancellationToken).ConfigureAwait(false))
            {
                if (e is AnalysisEvent.Completed completed)
                {
                    foreach (AnalyzedTile[] chunk in completed.Result.Tiles.Chunk(FinalTilesPerMessage))
                    {
                        var tiles = new AnalysisTiles();
                        tiles.Tiles.AddRange(chunk.Select(ToProto));
                        await responses.WriteAsync(new AnalyzeSlideResponse { FinalTiles = tiles }, context.CancellationToken).ConfigureAwait(false);
                    }
                }

                await responses.WriteAsync(ToProto(e), context.CancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException && StatusOf(e) is { } status)
        {
            throw new RpcException(status);
        }
        finally
        {
            job.Leave();
        }
    }

    /// <summary>The running job for <paramref name="key"/>, or a new one queued for the compute slot.</summary>
    private AnalysisJob JoinOrStart(string key, SlideAnalyzer analyzer, string slidePath, double mpp, AnalysisOptions options)
    {
        lock (_jobs)
        {
            if (_jobs.TryGetValue(key, out AnalysisJob? running) && running.TryWatch())
            {
                return running;
            }

            if (_jobs.Count >= _capacity)
            {
                throw new RpcException(new Status(StatusCode.ResourceExhausted,
                    $"{_jobs.Count} analyses are running or queued (the limit is {_capacity}); try again when one finishes."));
            }

            var job = new AnalysisJob(key, () => Store.ScoredTiles(key));
            job.TryWatch();
            _jobs[key] = job;
            _ = Task.Run(() => RunJobAsync(job, analyzer, slidePath, mpp, options), CancellationToken.None);
            return job;
        }
    }

    private async Task RunJobAsync(AnalysisJob job, SlideAnalyzer analyzer, string slidePath, double mpp, AnalysisOptions options)
    {
        Exception? failure = null;
        try
        {
            await _compute.WaitAsync(job.Stopping).ConfigureAwait(false);
            try
            {
                // The slide is opened by the job, not the call: the first watcher may leave while others stay.
                // Opened again through the roots: the queued path may have been swapped for a way out since it was checked.
                using Slide slide = _roots.OpenSlide(slidePath);
                await analyzer.AnalyzeAsync(slide, mpp, options, job.Post, job.Stopping).ConfigureAwait(false);
            }
            finally
            {
                _compute.Release();
            }
        }
        catch (Exception e)
        {
            failure = e;
        }
        finally
        {
            lock (_jobs)
            {
                // A call that came while this job was stopping started a successor under the same key: leave it.
                if (_jobs.TryGetValue(job.Key, out AnalysisJob? current) && ReferenceEquals(current, job))
                {
                    _jobs.Remove(job.Key);
                }
            }

            job.Finish(failure);
            job.Dispose();
        }
    }

    private async Task ScoreBagAsync(IAsyncStreamReader<ScoreBagRequest> requests, IServerStreamWriter<ScoreBagResponse> responses, ServerCallContext context)
    {
        SlideAnalyzer? analyzer = null;
        double? mpp = null;
        var patches = new List<Raster>();
        while (await requests.MoveNext(context.CancellationToken).ConfigureAwait(false))
        {
            ScoreBagRequest request = requests.Current;
            if (analyzer is null)
            {
                analyzer = AnalyzerFor(request.ModelPath, request.EncoderPath);
                mpp = request.HasMpp ? request.Mpp : null;
                try
                {
                    analyzer.PatchEdgeAt(mpp); // a refused mpp fails the call before any patch is decoded
                }
                catch (ArgumentException e)
                {
                    throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
                }
            }

            foreach (EncodedImage image in request.Patches)
            {
                if (patches.Count == MaxBagPatches)
                {
                    throw new RpcException(new Status(StatusCode.ResourceExhausted, $"A bag holds at most {MaxBagPatches} patches; score larger bags with AnalyzeSlide."));
                }

                // Kept at the model's patch size only: a client's large images are never held, one at a time is decoded.
                string what = $"Patch {patches.Count}";
                Raster decoded = EncodedImages.Decode(image, what, MaxPatchPixels);
                try
                {
                    patches.Add(analyzer.ToPatch(decoded, mpp, what));
                }
                catch (ArgumentException e)
                {
                    throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
                }
            }
        }

        analyzer ??= AnalyzerFor(string.Empty, string.Empty);
        if (patches.Count == 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "The bag is empty: send at least one patch before half-closing."));
        }

        await _compute.WaitAsync(context.CancellationToken).ConfigureAwait(false);
        (float[] probabilities, float[] scores, float[] attention) = await Task.Run(() =>
        {
            try
            {
                return analyzer.ScoreBag(patches);
            }
            finally
            {
                _compute.Release();
            }
        }, CancellationToken.None).ConfigureAwait(false);
        var response = new ScoreBagResponse { PredictedClass = Array.IndexOf(probabilities, probabilities.Max()) };
        response.Probabilities.AddRange(probabilities);
        response.Classes.AddRange(analyzer.Model.Card.Classes);
        response.Scores.AddRange(scores);
        response.Attention.AddRange(attention);
        await responses.WriteAsync(response, context.CancellationToken).ConfigureAwait(false);
    }

    private async Task ExportAnalysisAsync(ExportAnalysisRequest request, IServerStreamWriter<ExportAnalysisResponse> responses, ServerCallContext context)
    {
        EngineResult result = Stored(request.Key);
        AnalysisExportFormat format = ExportFormats.FromProto(request.Format);
        byte[] bytes = await Task.Run(() => Export(result, format), context.CancellationToken).ConfigureAwait(false);
        foreach ((int offset, int length) in ResponseChunks.Of(bytes.Length))
        {
            await responses.WriteAsync(new ExportAnalysisResponse { TotalBytes = bytes.Length, Data = ByteString.CopyFrom(bytes, offset, length) }, context.CancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The export's bytes; the slide is reopened through the roots (it may have moved out of them since).</summary>
    private byte[] Export(EngineResult result, AnalysisExportFormat format)
    {
        using Slide slide = _roots.OpenSlide(result.Header.SlidePath);
        return AnalysisFiles.Render(result, slide, format);
    }

    private EngineResult Stored(string key) =>
        (string.IsNullOrEmpty(key) ? null : Store.Load(key))
        ?? throw new RpcException(new Status(StatusCode.NotFound, $"No finished analysis with key '{key}': list them with ListAnalyses."));

    private ListAnalysesResponse ListAnalyses()
    {
        var response = new ListAnalysesResponse();
        response.Analyses.AddRange(Store.List().Select(a => new AnalysisSummary
        {
            Key = a.Key,
            SlidePath = a.SlidePath,
            ModelName = a.ModelName,
            TileCount = a.TileCount,
            TilesScored = a.TilesScored,
            Complete = a.Complete,
            Created = a.Created,
            Finished = a.Finished ?? string.Empty,
        }));
        return response;
    }

    /// <summary>The default model, then every checkpoint under the model roots (the default once).</summary>
    private ListModelsResponse ListModels()
    {
        var response = new ListModelsResponse();
        string defaultModel = FolderRoots.RealPath(_defaultModelPath) ?? Path.GetFullPath(_defaultModelPath);
        response.Models.Add(ModelInfoOf(defaultModel, isDefault: true));
        response.Models.AddRange(_models.ModelFiles().Where(path => path != defaultModel).Select(path => ModelInfoOf(path, isDefault: false)));
        return response;
    }

    /// <summary>
    /// What the card of <paramref name="path"/> says. A card that cannot be read is listed with its error rather than left
    /// out: the client that trained or copied the model sees why it cannot be used, where a server log would not reach it.
    /// </summary>
    private static ModelInfo ModelInfoOf(string path, bool isDefault)
    {
        var info = new ModelInfo { Path = path, IsDefault = isDefault };
        ModelCard card;
        try
        {
            string json = ModelCheckpoint.ReadCardText(path, out string cardPath);
            if (IsSegmentationCard(json))
            {
                // Segmentation checkpoints live under the same roots: listed as what they are, for SegmentationService.
                return SegmentationInfoOf(info, SegmentationCard.Parse(json, cardPath));
            }

            card = ModelCard.Parse(json, cardPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ModelCheckpointException)
        {
            info.Error = e.Message;
            return info;
        }

        info.Name = card.Name;
        info.Architecture = card.Architecture;
        info.Classes.AddRange(card.Classes);
        if (card.Mpp is { } mpp)
        {
            info.Mpp = mpp;
        }

        if (card.Magnification is { } magnification)
        {
            info.Magnification = magnification;
        }

        bool patches = card.Spec.Input == Engine.Mil.MilInput.Patches;
        info.Input = patches ? "patches" : "features";
        info.PatchSize = patches ? card.Spec.PatchSize : 0;
        info.Channels = patches ? card.Spec.Channels : 0;
        info.FeatureSize = patches ? 0 : card.Spec.FeatureSize;
        SetProvenance(info, card.TrainingData, card.Metrics, card.Limitations, card.Created, card.WeightsSha256);
        info.EncoderName = card.EncoderName ?? string.Empty;
        info.EncoderSha256 = card.EncoderSha256 ?? string.Empty;
        return info;
    }

    /// <summary>Whether a card's JSON declares the segmentation card format (invalid JSON is left to the model card's parser to report).</summary>
    private static bool IsSegmentationCard(string json)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(json);
            return document.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && document.RootElement.TryGetProperty("format", out System.Text.Json.JsonElement format)
                && format.ValueKind == System.Text.Json.JsonValueKind.String
                && format.GetString() == SegmentationCard.CurrentFormat;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    /// <summary>What a segmentation card says, in the fields ListModels has: architecture fcn-mil, input "image".</summary>
    private static ModelInfo SegmentationInfoOf(ModelInfo info, SegmentationCard card)
    {
        info.Name = card.Name;
        info.Architecture = card.Architecture;
        info.Classes.AddRange(card.Classes.Select(c => c.Name));
        if (card.Mpp is { } mpp)
        {
            info.Mpp = mpp;
        }

        info.Input = "image";
        info.Channels = card.Spec.Channels;
        SetProvenance(info, card.TrainingData, card.Metrics, card.Limitations, card.Created, card.WeightsSha256);
        return info;
    }

    /// <summary>What both card formats say of where a model came from: its data, its measured metrics, its limits, when, and its weights' hash.</summary>
    private static void SetProvenance(ModelInfo info, string trainingData, IReadOnlyDictionary<string, double> metrics, string limitations, string created, string weightsSha256)
    {
        info.TrainingData = trainingData;
        foreach ((string metric, double value) in metrics)
        {
            info.Metrics[metric] = value;
        }

        info.Limitations = limitations;
        info.Created = created;
        info.WeightsSha256 = weightsSha256;
    }

    /// <summary>
    /// The analyzer of a model (and, for a head on features, its encoder), loaded once and kept: the default, or a checkpoint
    /// under the model roots.
    /// </summary>
    private SlideAnalyzer AnalyzerFor(string modelPath, string encoderPath)
    {
        string path = string.IsNullOrEmpty(modelPath) ? _defaultModelPath : _models.Resolve(modelPath);
        string? encoder = string.IsNullOrEmpty(encoderPath) ? null : _models.Resolve(encoderPath);
        try
        {
            return _analyzers.GetOrAdd(encoder is null ? path : $"{path}|{encoder}", _ =>
            {
                TileEncoder? loaded = encoder is null ? null : TileEncoder.Load(encoder, _device);
                try
                {
                    var analyzer = new SlideAnalyzer(Store, AnalysisModel.Load(path, loaded));
                    if (loaded is not null)
                    {
                        _encoders.Add(loaded);
                    }

                    return analyzer;
                }
                catch
                {
                    loaded?.Dispose();
                    throw;
                }
            });
        }
        catch (EncoderException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        catch (Exception e) when (e is IOException or InvalidDataException or SafeTensorsException or ModelCheckpointException)
        {
            throw new RpcException(new Status(string.IsNullOrEmpty(modelPath) ? StatusCode.FailedPrecondition : StatusCode.InvalidArgument, $"Cannot load model '{path}': {e.Message}"));
        }
    }

    private static AnalysisOptions OptionsOf(AnalyzeSlideRequest request)
    {
        var defaults = new AnalysisOptions();
        if (request.TileSize < 0 || request.Overlap < 0 || (request.HasTargetMpp && request.TargetMpp <= 0) || (request.HasMinTissueFraction && request.MinTissueFraction is < 0 or > 1))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "tile_size and overlap are at least 0, target_mpp is positive and min_tissue_fraction is in [0, 1]."));
        }

        return defaults with
        {
            TargetMpp = request.HasTargetMpp ? request.TargetMpp : null,
            TileSize = request.TileSize > 0 ? request.TileSize : null,
            Overlap = request.Overlap,
            MinTissueFraction = request.HasMinTissueFraction ? request.MinTissueFraction : defaults.MinTissueFraction,
            RegionOfInterest = request.RegionOfInterest is { Width: > 0, Height: > 0 } roi ? new SlideBounds(roi.X, roi.Y, roi.Width, roi.Height) : null,
        };
    }

    private static Status? StatusOf(Exception exception) => exception switch
    {
        RpcException => null,
        InvalidOperationException e => new Status(StatusCode.Internal, e.Message),
        _ => SlideStatus.From(exception),
    };

    private static AnalyzeSlideResponse ToProto(AnalysisEvent e) => e switch
    {
        AnalysisEvent.Started s => new AnalyzeSlideResponse { Header = ToProto(s.Header) },
        AnalysisEvent.Scored s => new AnalyzeSlideResponse { Progress = ToProto(s) },
        AnalysisEvent.Completed c => new AnalyzeSlideResponse { Result = ToProto(c.Result, includeTiles: false) },
        _ => throw new ArgumentOutOfRangeException(nameof(e), e, "Unknown analysis event."),
    };

    private static AnalysisProgress ToProto(AnalysisEvent.Scored scored)
    {
        var progress = new AnalysisProgress { TilesDone = scored.Done, TileCount = scored.Total };
        progress.Tiles.AddRange(scored.Tiles.Select(t => TileResultOf(t.Index, t.X, t.Y, t.Width, t.Height, t.Score, t.Probabilities)));
        return progress;
    }

    private static ProtoHeader ToProto(EngineHeader h)
    {
        var header = new ProtoHeader
        {
            Key = h.Key,
            SlidePath = h.SlidePath,
            SlideWidth = h.SlideWidth,
            SlideHeight = h.SlideHeight,
            SlideMpp = h.SlideMpp,
            ModelName = h.ModelName,
            ModelSha256 = h.ModelSha256,
            TargetMpp = h.TargetMpp,
            TileSize = h.TileSize,
            Level0TileSize = h.Level0TileSize,
            Columns = h.Columns,
            Rows = h.Rows,
            TileCount = h.TileCount,
            TilesAlreadyScored = h.TilesAlreadyScored,
        };
        header.Classes.AddRange(h.Classes);
        return header;
    }

    private GetAnalysisResponse GetAnalysis(GetAnalysisRequest request)
    {
        var response = new GetAnalysisResponse { Result = ToProto(Stored(request.Key), request.IncludeTiles) };
        return response.CalculateSize() <= SlideServiceImpl.MaxResponseBytes
            ? response
            : throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"Analysis {request.Key} has {response.Result.Tiles.Count} tiles, more than fit in 4 MiB: ask without include_tiles and export them (ExportAnalysis, CSV or GeoJSON)."));
    }

    private static TileResult ToProto(AnalyzedTile t)
    {
        TileResult tile = TileResultOf(t.Index, t.X, t.Y, t.Width, t.Height, t.Score, t.Probabilities);
        tile.Attention = t.Attention;
        tile.AttentionPercentile = t.Percentile;
        return tile;
    }

    /// <summary>A tile as progress carries it (attention and percentile come with the final tiles).</summary>
    private static TileResult TileResultOf(int index, long x, long y, long width, long height, float score, float[] probabilities)
    {
        var tile = new TileResult { Index = index, Level0 = new Rect { X = x, Y = y, Width = width, Height = height }, Score = score };
        tile.Probabilities.AddRange(probabilities);
        return tile;
    }

    private static ProtoResult ToProto(EngineResult r, bool includeTiles)
    {
        var result = new ProtoResult
        {
            Header = ToProto(r.Header),
            PredictedClass = r.PredictedClass,
            PredictedClassName = r.PredictedClassName,
            Seconds = r.Seconds,
            FromStore = r.FromStore,
            Finished = r.Finished,
        };
        result.Probabilities.AddRange(r.Probabilities);
        if (includeTiles)
        {
            result.Tiles.AddRange(r.Tiles.Select(ToProto));
        }

        return result;
    }
}
