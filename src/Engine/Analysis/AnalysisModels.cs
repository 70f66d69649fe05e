using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Slides;

namespace SlidePlugin.Engine.Analysis;

/// <summary>How a slide is cut and scored; every field that changes the result is part of the analysis key.</summary>
public sealed record AnalysisOptions
{
    /// <summary>Resolution to tile at, µm/px; null: the model card's.</summary>
    public double? TargetMpp { get; init; }

    /// <summary>Tile edge at the target resolution; null: the model's patch size (other sizes are resized to it).</summary>
    public int? TileSize { get; init; }

    /// <summary>Pixels shared by neighbouring tiles, at the target resolution.</summary>
    public int Overlap { get; init; }

    /// <summary>Tiles with less tissue than this fraction are not scored.</summary>
    public double MinTissueFraction { get; init; } = 0.5;

    /// <summary>Only tiles inside this level-0 rectangle; null: the whole slide.</summary>
    public SlideBounds? RegionOfInterest { get; init; }

    /// <summary>Tiles per model batch; also how many are read ahead.</summary>
    public int BatchSize { get; init; } = 256;
}

/// <summary>
/// A model ready to score slides: the network (an A-MIL head), its card and the hash of its weights (part of the analysis
/// key), and, for a head on features, the tile encoder that makes them (CLAM's way: tiles -> encoder -> head).
/// </summary>
public sealed record AnalysisModel(AttentionMil Network, ModelCard Card, string WeightsPath)
{
    /// <summary>The tile encoder of a head on features; null for a model of RGB patches.</summary>
    public Encoders.TileEncoder? Encoder { get; init; }

    /// <summary>The edge of what one tile becomes before the network: the encoder's input, or the model's patch.</summary>
    public int InputSize => Encoder?.Card.InputSize ?? Card.Spec.PatchSize;

    /// <summary>The resolution the model was trained at: the card's, else the encoder's.</summary>
    public double? Mpp => Card.Mpp ?? Encoder?.Card.Mpp;

    /// <summary>Loads a checkpoint and its card (validated): a model of RGB patches, or a head on the features of <paramref name="encoder"/>.</summary>
    /// <exception cref="ModelCheckpointException">The checkpoint is corrupt or does not match its card.</exception>
    /// <exception cref="FileNotFoundException">The weights or the card is missing.</exception>
    /// <exception cref="InvalidDataException">The card is invalid, or the model and the encoder do not go together; the message says how.</exception>
    public static AnalysisModel Load(string weightsPath, Encoders.TileEncoder? encoder = null)
    {
        (AttentionMil network, ModelCard card) = ModelCheckpoint.Load(weightsPath);
        if (card.Spec.Input == MilInput.Features)
        {
            if (encoder is null)
            {
                throw new InvalidDataException($"Model '{weightsPath}' is a head on {card.Spec.FeatureSize}-d features: give the tile encoder it was trained with (--encoder NAME.onnx).");
            }

            if (encoder.Card.OutputDim != card.Spec.FeatureSize)
            {
                throw new InvalidDataException($"Model '{weightsPath}' takes {card.Spec.FeatureSize}-d features, but the encoder '{encoder.Card.Name}' gives {encoder.Card.OutputDim}: use the encoder the head was trained with.");
            }
        }
        else if (encoder is not null)
        {
            throw new InvalidDataException($"Model '{weightsPath}' scores RGB patches itself; an encoder goes with a head on features only.");
        }
        else if (card.Spec.Channels != 3)
        {
            throw new InvalidDataException($"Model '{weightsPath}' takes {card.Spec.Channels}-channel patches; slides need a model of RGB patches.");
        }

        return new AnalysisModel(network, card, Path.GetFullPath(weightsPath)) { Encoder = encoder };
    }
}

/// <summary>One scored tile as the model sees it before the whole slide is in: raw attention score and per-tile class probabilities.</summary>
/// <param name="Index">Position in the tile grid's list of tissue tiles.</param>
/// <param name="X">Level-0 left.</param>
/// <param name="Y">Level-0 top.</param>
/// <param name="Width">Level-0 width.</param>
/// <param name="Height">Level-0 height.</param>
/// <param name="Score">
/// Raw attention score (before the softmax over the slide). For CLAM-MB, one branch per class: the last class's (the
/// positive class of a binary task) while the analysis runs; the finished analysis gives the predicted class's.
/// </param>
/// <param name="Probabilities">What the classifier makes of this tile alone, one value per class.</param>
/// <param name="BranchScores">CLAM-MB: [K] the raw score of every branch; null for single-branch models.</param>
public sealed record TileScore(int Index, long X, long Y, long Width, long Height, float Score, float[] Probabilities, float[]? BranchScores = null);

/// <summary>A tile of a finished analysis: its score plus normalised attention and the attention percentile (0–100).</summary>
public sealed record AnalyzedTile(int Index, long X, long Y, long Width, long Height, float Score, float[] Probabilities, double Attention, double Percentile);

/// <summary>What an analysis is about, known before the first tile: sent first to viewers.</summary>
public sealed record AnalysisHeader(
    string Key,
    string SlidePath,
    long SlideWidth,
    long SlideHeight,
    double SlideMpp,
    string ModelName,
    string ModelSha256,
    IReadOnlyList<string> Classes,
    double TargetMpp,
    int TileSize,
    double Level0TileSize,
    int Columns,
    int Rows,
    int TileCount,
    int TilesAlreadyScored);

/// <summary>
/// Where an analysis run spent its time. Reading is summed over the reader threads (OpenSlide's read_region, which
/// includes its JPEG decoding, plus the copy into patches), so it can exceed the wall time; the rest are wall seconds.
/// </summary>
public sealed record AnalysisTimings(double TissueSeconds, double ReadThreadSeconds, double ModelSeconds, double StoreSeconds, double FinishSeconds);

/// <summary>A finished analysis: slide-level prediction and every tile with its attention.</summary>
public sealed record AnalysisResult(
    AnalysisHeader Header,
    IReadOnlyList<float> Probabilities,
    int PredictedClass,
    IReadOnlyList<AnalyzedTile> Tiles,
    double Seconds,
    string Finished,
    bool FromStore)
{
    /// <summary>Where this run's time went; null when the result came from the store.</summary>
    public AnalysisTimings? Timings { get; init; }

    /// <summary>The predicted class's name.</summary>
    public string PredictedClassName => Header.Classes[PredictedClass];
}

/// <summary>What an analysis reports while it runs, in order: the header, batches of tiles, the result.</summary>
public abstract record AnalysisEvent
{
    /// <summary>The grid is built; nothing scored yet in this run.</summary>
    public sealed record Started(AnalysisHeader Header) : AnalysisEvent;

    /// <summary>A batch of tiles was scored and stored; <paramref name="Done"/> of <paramref name="Total"/> tiles are in.</summary>
    public sealed record Scored(IReadOnlyList<TileScore> Tiles, int Done, int Total) : AnalysisEvent;

    /// <summary>All tiles are in and normalised.</summary>
    public sealed record Completed(AnalysisResult Result) : AnalysisEvent;
}
