using System.Globalization;
using System.Text.Json;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.LabelMasks;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Segmentation;

/// <summary>One output class of a segmentation model: its label code in masks, its name and its colour (<c>#rrggbb</c>).</summary>
public sealed record SegmentationClass(byte Code, string Name, string Color)
{
    /// <summary>The colour as bytes.</summary>
    public (byte R, byte G, byte B) Rgb()
    {
        int rgb = int.Parse(Color.AsSpan(1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return ((byte)(rgb >> 16), (byte)(rgb >> 8), (byte)rgb);
    }

    /// <summary>The class of a label table entry.</summary>
    public static SegmentationClass Of(LabelClass c)
    {
        ArgumentNullException.ThrowIfNull(c);
        return new(c.Code, c.Name, $"#{c.Color.R:x2}{c.Color.G:x2}{c.Color.B:x2}");
    }
}

/// <summary>
/// The card of an FCN-MIL checkpoint (<c>NAME.json</c> beside <c>NAME.safetensors</c>): the network's shape, its classes
/// (index order; index 0 is the background map), input normalisation, the resolution it was trained at, the presence
/// threshold the argmax uses, the data and metrics, and the SHA-256 of the weights.
/// </summary>
public sealed record SegmentationCard
{
    /// <summary>The card format written by this version.</summary>
    public const string CurrentFormat = "slideplugin.segmentation-card.v1";

    /// <summary>The architecture name.</summary>
    public const string FcnMil = "fcn-mil";

    /// <summary>The card format.</summary>
    public string Format { get; init; } = CurrentFormat;

    /// <summary>A short name for people.</summary>
    public string Name { get; init; } = "";

    /// <summary>Always <see cref="FcnMil"/> in this version.</summary>
    public string Architecture { get; init; } = FcnMil;

    /// <summary>The network's shape.</summary>
    public FcnSpec Spec { get; init; } = new();

    /// <summary>The classes, index order (index = the network's output map).</summary>
    public IReadOnlyList<SegmentationClass> Classes { get; init; } = [];

    /// <summary>Micrometres per pixel of the training images, when known: slide regions are read at it.</summary>
    public double? Mpp { get; init; }

    /// <summary>Per-channel mean subtracted from pixel values scaled to [0, 1].</summary>
    public IReadOnlyList<float> InputMean { get; init; } = [0f];

    /// <summary>Per-channel standard deviation the centred values are divided by.</summary>
    public IReadOnlyList<float> InputStd { get; init; } = [1f];

    /// <summary>The argmax considers only classes whose presence (largest probability in the image) reaches this; null: all classes.</summary>
    public float? ImageLevelThreshold { get; init; } = 0.5f;

    /// <summary>Where the training data came from and how the tags were made.</summary>
    public string TrainingData { get; init; } = "";

    /// <summary>Training metrics (final loss, mean IoU where masks were known, ...).</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    /// <summary>Intended use and known limits.</summary>
    public string Limitations { get; init; } = "";

    /// <summary>When the checkpoint was written (UTC, ISO 8601).</summary>
    public string Created { get; init; } = "";

    /// <summary>Lower-case hex SHA-256 of the safetensors file this card describes.</summary>
    public string WeightsSha256 { get; init; } = "";

    /// <summary>The input normalisation.</summary>
    public PatchNormalization Normalization() => new(InputMean, InputStd);

    /// <summary>The classes as a label table (for palette PNGs of predictions): code, name and colour of each.</summary>
    public LabelTable ToLabelTable() => LabelTable.FromClasses([.. Classes.Select(c => new LabelClass(c.Code, c.Name, c.Rgb()))], $"model card '{Name}'");

    /// <summary>The card as JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, ModelCard.JsonOptions);

    /// <summary>Parses and checks a card; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="ModelCheckpointException">Not a segmentation card of a known format, or inconsistent.</exception>
    public static SegmentationCard Parse(string json, string source)
    {
        SegmentationCard card;
        try
        {
            card = JsonSerializer.Deserialize<SegmentationCard>(json, ModelCard.JsonOptions)
                ?? throw new ModelCheckpointException($"Segmentation card '{source}' is empty.");
        }
        catch (JsonException e)
        {
            throw new ModelCheckpointException($"Segmentation card '{source}' is not valid JSON: {e.Message}", e);
        }

        string? problem = card.Format != CurrentFormat ? $"has format '{card.Format}'; this version reads '{CurrentFormat}'"
            : card.Architecture != FcnMil ? $"names architecture '{card.Architecture}'; this version builds '{FcnMil}'"
            : card.Spec.Channels is not (1 or 3) || card.Spec.Classes < 2 || card.Spec.Widths.Count != 3 || card.Spec.Widths.Any(w => w < 1) ? "has a spec that cannot build an FCN (1 or 3 channels, 2+ classes, three positive widths)"
            : card.Classes.Count != card.Spec.Classes ? $"names {card.Classes.Count} classes for a network with {card.Spec.Classes}"
            : card.Classes.Any(c => c.Color.Length != 7 || c.Color[0] != '#' || !int.TryParse(c.Color.AsSpan(1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out _)) ? "has a class colour that is not #rrggbb"
            : card.Classes.Select(c => c.Code).Distinct().Count() != card.Classes.Count ? "names a label code twice"
            : card.InputMean.Count is not (1 or 3) || card.InputStd.Count is not (1 or 3) || card.InputStd.Any(s => !(s > 0)) ? "needs 1 or 3 input_mean and input_std values, the std positive"
            : card.Mpp is { } mpp && !(mpp > 0) ? "has an mpp that is not positive"
            : null;
        return problem is null ? card : throw new ModelCheckpointException($"Segmentation card '{source}' {problem}.");
    }
}

/// <summary>
/// An FCN-MIL model on disk, as <see cref="ModelCheckpoint"/> keeps A-MIL models: safetensors weights with PyTorch names
/// (<c>body.0.weight</c>, ...) and the card, written together; loading checks card, hash, names and shapes.
/// </summary>
public static class SegmentationCheckpoint
{
    /// <summary>Saves <paramref name="net"/> and its card; returns the card written.</summary>
    public static SegmentationCard Save(string weightsPath, FullyConvolutionalNet net, SegmentationCard card)
    {
        ArgumentNullException.ThrowIfNull(weightsPath);
        ArgumentNullException.ThrowIfNull(net);
        ArgumentNullException.ThrowIfNull(card);
        if (card.Classes.Count != net.Spec.Classes)
        {
            throw new ArgumentException($"The card names {card.Classes.Count} classes for a network with {net.Spec.Classes}.", nameof(card));
        }

        ModelCheckpoint.RequireFiniteMetrics(card.Metrics);
        return ModelCheckpoint.WriteWithCard(weightsPath, net, SegmentationCard.FcnMil, sha256 => card with
        {
            Spec = net.Spec,
            Created = ModelCheckpoint.CreatedOrNow(card.Created),
            WeightsSha256 = sha256,
        }, c => c.ToJson());
    }

    /// <summary>Loads a network and its card.</summary>
    /// <exception cref="FileNotFoundException">The weights or the card is missing.</exception>
    /// <exception cref="ModelCheckpointException">The card, the weights or their agreement is wrong; the message says how.</exception>
    public static (FullyConvolutionalNet Net, SegmentationCard Card) Load(string weightsPath)
    {
        (SegmentationCard card, SafeTensorsFile weights) = ModelCheckpoint.ReadVerified(weightsPath, SegmentationCard.Parse, c => c.WeightsSha256);
        var net = new FullyConvolutionalNet(card.Spec, new TensorRandom(0));
        ModelCheckpoint.LoadWeights(net, weights, weightsPath);
        net.Eval();
        return (net, card);
    }
}
