using System.Text.Json;
using System.Text.Json.Serialization;
using SlidePlugin.Engine.Mil;

namespace SlidePlugin.Engine.Checkpoints;

/// <summary>
/// What a checkpoint is and how it was made, stored as <c>&lt;name&gt;.json</c> beside <c>&lt;name&gt;.safetensors</c>:
/// the architecture (enough to rebuild the model), class names, the resolution it expects, the data it was trained on
/// and its metrics, and the SHA-256 of the weights it describes.
/// </summary>
public sealed record ModelCard
{
    /// <summary>The card format written by this version.</summary>
    public const string CurrentFormat = "slideplugin.model-card.v1";

    /// <summary>The card format.</summary>
    public string Format { get; init; } = CurrentFormat;

    /// <summary>A short name for people (e.g. "ucsb-breast-gated-amil").</summary>
    public string Name { get; init; } = "";

    /// <summary>attention-mil or gated-attention-mil.</summary>
    public string Architecture { get; init; } = "";

    /// <summary>The model's shape.</summary>
    public AttentionMilSpec Spec { get; init; } = new();

    /// <summary>Class names, index order; a binary head's second class is the positive one.</summary>
    public IReadOnlyList<string> Classes { get; init; } = ["negative", "positive"];

    /// <summary>Micrometres per pixel of the patches it was trained on, when known.</summary>
    public double? Mpp { get; init; }

    /// <summary>Objective magnification of the training patches, when known and no mpp is.</summary>
    public double? Magnification { get; init; }

    /// <summary>Per-channel mean subtracted from pixel values scaled to [0, 1] (one value for all channels, or one per channel).</summary>
    public IReadOnlyList<float> InputMean { get; init; } = [0f];

    /// <summary>Per-channel standard deviation the centred values are divided by.</summary>
    public IReadOnlyList<float> InputStd { get; init; } = [1f];

    /// <summary>For a head on features: the name (in its card) of the tile encoder it was trained on; null when not recorded.</summary>
    public string? EncoderName { get; init; }

    /// <summary>For a head on features: lower-case hex SHA-256 of that encoder's ONNX file; null when not recorded.</summary>
    public string? EncoderSha256 { get; init; }

    /// <summary>Where the training data came from, how it was cut and split.</summary>
    public string TrainingData { get; init; } = "";

    /// <summary>Held-out metrics (accuracy, auc, ...).</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    /// <summary>Intended use and known limits.</summary>
    public string Limitations { get; init; } = "";

    /// <summary>When the checkpoint was written (UTC, ISO 8601).</summary>
    public string Created { get; init; } = "";

    /// <summary>Lower-case hex SHA-256 of the safetensors file this card describes.</summary>
    public string WeightsSha256 { get; init; } = "";

    /// <summary>JSON options of the card: snake_case names, enums as snake_case strings, indented.</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>The card as JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Parses and checks a card; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="ModelCheckpointException">Not a card of a known format, or inconsistent.</exception>
    public static ModelCard Parse(string json, string source)
    {
        ModelCard card;
        try
        {
            card = JsonSerializer.Deserialize<ModelCard>(json, JsonOptions)
                ?? throw new ModelCheckpointException($"Model card '{source}' is empty.");
        }
        catch (JsonException e)
        {
            throw new ModelCheckpointException($"Model card '{source}' is not valid JSON: {e.Message}", e);
        }

        if (card.Format != CurrentFormat)
        {
            throw new ModelCheckpointException($"Model card '{source}' has format '{card.Format}'; this version reads '{CurrentFormat}'.");
        }

        try
        {
            card.Spec.Validate();
        }
        catch (ArgumentException e)
        {
            throw new ModelCheckpointException($"Model card '{source}' describes a model that cannot be built: {e.Message}", e);
        }

        if (card.Classes.Count != card.Spec.ClassCount)
        {
            throw new ModelCheckpointException($"Model card '{source}' names {card.Classes.Count} classes for a model with {card.Spec.ClassCount}.");
        }

        if (card.InputMean.Count is not (1 or 3) || card.InputStd.Count is not (1 or 3) || card.InputStd.Any(s => !(s > 0)))
        {
            throw new ModelCheckpointException($"Model card '{source}': input_mean and input_std need 1 or 3 values, the std positive.");
        }

        if (card.Architecture != card.Spec.ArchitectureName)
        {
            throw new ModelCheckpointException($"Model card '{source}' says '{card.Architecture}' but its spec is a {card.Spec.ArchitectureName}.");
        }

        return card;
    }
}
