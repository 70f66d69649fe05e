using System.Globalization;
using System.Security.Cryptography;
using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Modules;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Checkpoints;

/// <summary>
/// A trained model on disk: <c>NAME.safetensors</c> (PyTorch state_dict names, float32) and <c>NAME.json</c>
/// (<see cref="ModelCard"/>). Both files are written together (<see cref="AtomicFile.WriteTogether"/>), weights
/// first, so a card never describes weights that are not there and weights never appear without their card; loading
/// checks the card, the weights' hash, names, shapes and dtypes before building anything.
/// </summary>
public static class ModelCheckpoint
{
    /// <summary>The card's path for a weights path: same folder and stem, extension .json.</summary>
    public static string CardPathFor(string weightsPath) => Path.ChangeExtension(weightsPath, ".json");

    /// <summary>Saves <paramref name="model"/> to <paramref name="weightsPath"/> and its card beside it; returns the card written.</summary>
    public static ModelCard Save(string weightsPath, AttentionMil model, ModelCard card)
    {
        ArgumentNullException.ThrowIfNull(weightsPath);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(card);
        if (card.Classes.Count != model.Spec.ClassCount)
        {
            throw new ArgumentException($"The card names {card.Classes.Count} classes for a model with {model.Spec.ClassCount}.", nameof(card));
        }

        RequireFiniteMetrics(card.Metrics);
        return WriteWithCard(weightsPath, model, model.Spec.ArchitectureName, sha256 => card with
        {
            Architecture = model.Spec.ArchitectureName,
            Spec = model.Spec,
            Created = CreatedOrNow(card.Created),
            WeightsSha256 = sha256,
        }, c => c.ToJson());
    }

    /// <summary>Loads a model and its card.</summary>
    /// <exception cref="FileNotFoundException">The weights or the card is missing.</exception>
    /// <exception cref="ModelCheckpointException">The card, the weights or their agreement is wrong; the message says how.</exception>
    public static (AttentionMil Model, ModelCard Card) Load(string weightsPath)
    {
        (ModelCard card, SafeTensorsFile weights) = ReadVerified(weightsPath, ModelCard.Parse, c => c.WeightsSha256);
        var model = new AttentionMil(card.Spec, new TensorRandom(0));
        LoadWeights(model, weights, weightsPath);
        model.Eval();
        return (model, card);
    }

    /// <summary>The most bytes of a card <see cref="ReadCard"/> reads: a card is a few KB, a listing should not read a large file.</summary>
    public const int MaxCardBytes = 1 << 20;

    /// <summary>
    /// The card beside <paramref name="weightsPath"/>, parsed and checked, without reading the weights: what a listing of
    /// models shows. <see cref="Load"/> checks the weights against it.
    /// </summary>
    /// <exception cref="FileNotFoundException">The card is missing.</exception>
    /// <exception cref="ModelCheckpointException">The card is larger than <see cref="MaxCardBytes"/>, not a model card, or inconsistent.</exception>
    public static ModelCard ReadCard(string weightsPath) => ModelCard.Parse(ReadCardText(weightsPath, out string cardPath), cardPath);

    /// <summary>
    /// The text of the card beside <paramref name="weightsPath"/> (any kind: a listing tells model and segmentation cards
    /// apart by their format), and its path.
    /// </summary>
    /// <exception cref="FileNotFoundException">The card is missing.</exception>
    /// <exception cref="ModelCheckpointException">The card is larger than <see cref="MaxCardBytes"/>.</exception>
    public static string ReadCardText(string weightsPath, out string cardPath)
    {
        ArgumentNullException.ThrowIfNull(weightsPath);
        cardPath = CardPathFor(weightsPath);
        using FileStream stream = File.OpenRead(cardPath);
        if (stream.Length > MaxCardBytes)
        {
            throw new ModelCheckpointException($"Model card '{cardPath}' is {stream.Length} bytes; a card is at most {MaxCardBytes}.");
        }

        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>
    /// Writes <paramref name="model"/>'s state dict (PyTorch names) and the card <paramref name="cardFor"/> makes from
    /// the weights' SHA-256, together (<see cref="AtomicFile.WriteTogether"/>): a card that cannot be written leaves
    /// neither file, never weights without their card. Returns the card written.
    /// </summary>
    internal static TCard WriteWithCard<TCard>(string weightsPath, Module model, string architecture, Func<string, TCard> cardFor, Func<TCard, string> toJson)
    {
        TCard? written = default;
        string sha256 = "";
        AtomicFile.WriteTogether(
        [
            new AtomicPart(weightsPath, ".safetensors", temporary =>
            {
                SafeTensors.SaveTo(temporary, model.StateDict(), new Dictionary<string, string>
                {
                    ["format"] = "pt",
                    ["architecture"] = architecture,
                });
                sha256 = Sha256Of(temporary);
            }),
            new AtomicPart(CardPathFor(weightsPath), "", temporary =>
            {
                written = cardFor(sha256);
                File.WriteAllBytes(temporary, System.Text.Encoding.UTF8.GetBytes(toJson(written)));
            }),
        ]);
        return written!;
    }

    /// <summary>Throws when a card metric is NaN or infinite: JSON has no such numbers, so undefined metrics are left out of cards.</summary>
    /// <exception cref="ArgumentException">A metric that is not finite, named.</exception>
    internal static void RequireFiniteMetrics(IReadOnlyDictionary<string, double> metrics)
    {
        foreach ((string name, double value) in metrics)
        {
            if (!double.IsFinite(value))
            {
                throw new ArgumentException($"The card's metric '{name}' is {value.ToString(CultureInfo.InvariantCulture)}; JSON has no such number, so an undefined metric is left out of the card.", nameof(metrics));
            }
        }
    }

    /// <summary><paramref name="created"/>, or now (UTC, ISO 8601) when it is empty.</summary>
    internal static string CreatedOrNow(string created) =>
        string.IsNullOrEmpty(created) ? DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture) : created;

    /// <summary>
    /// Reads the card beside <paramref name="weightsPath"/> (parsed by <paramref name="parse"/>) and the weights, and
    /// checks that both exist and that the card was written for these weights.
    /// </summary>
    /// <exception cref="FileNotFoundException">The weights or the card is missing.</exception>
    /// <exception cref="ModelCheckpointException">The card or the weights are unreadable, or they disagree.</exception>
    internal static (TCard Card, SafeTensorsFile Weights) ReadVerified<TCard>(string weightsPath, Func<string, string, TCard> parse, Func<TCard, string> weightsSha256)
    {
        ArgumentNullException.ThrowIfNull(weightsPath);
        string cardPath = CardPathFor(weightsPath);
        if (!File.Exists(weightsPath))
        {
            throw new FileNotFoundException($"Model weights '{weightsPath}' do not exist.", weightsPath);
        }

        if (!File.Exists(cardPath))
        {
            throw new FileNotFoundException($"Model '{weightsPath}' has no card '{cardPath}' (it says which architecture to build).", cardPath);
        }

        TCard card = parse(File.ReadAllText(cardPath), cardPath);
        SafeTensorsFile weights;
        try
        {
            weights = SafeTensors.Load(weightsPath);
        }
        catch (SafeTensorsException e)
        {
            throw new ModelCheckpointException(e.Message, e);
        }

        string expected = weightsSha256(card);
        if (expected.Length > 0 && !string.Equals(expected, weights.Sha256(), StringComparison.OrdinalIgnoreCase))
        {
            throw new ModelCheckpointException($"Model card '{cardPath}' was written for other weights than '{weightsPath}' (SHA-256 differs).");
        }

        return (card, weights);
    }

    /// <summary>
    /// Copies <paramref name="weights"/> into <paramref name="model"/> after checking names, shapes and dtypes
    /// (float tensors only; PyTorch's integer <c>num_batches_tracked</c> counters are ignored).
    /// </summary>
    public static void LoadWeights(Module model, SafeTensorsFile weights, string source)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(weights);
        var wrongType = weights.Entries.Values
            .Where(e => !e.Name.EndsWith(".num_batches_tracked", StringComparison.Ordinal) && e.Dtype is not ("F32" or "F16" or "BF16" or "F64"))
            .Select(e => $"'{e.Name}' is {e.Dtype}")
            .ToList();
        if (wrongType.Count > 0)
        {
            throw new ModelCheckpointException($"Weights '{source}' hold non-float parameters: {string.Join(", ", wrongType)}.");
        }

        var tensors = weights.Entries.Keys
            .Where(name => !name.EndsWith(".num_batches_tracked", StringComparison.Ordinal))
            .ToDictionary(name => name, weights.ToTensor, StringComparer.Ordinal);
        foreach (Tensor tensor in tensors.Values)
        {
            FlushSubnormals(tensor.Data);
        }
        try
        {
            model.LoadStateDict(tensors);
        }
        catch (StateDictException e)
        {
            throw new ModelCheckpointException($"Weights '{source}': {e.Message}", e);
        }
        finally
        {
            foreach (Tensor tensor in tensors.Values)
            {
                tensor.Dispose();
            }
        }
    }

    /// <summary>
    /// Sets subnormal values (below 1.18e-38 in magnitude) to zero, as PyTorch's <c>set_flush_denormal(True)</c> and
    /// oneDNN do. Weight decay leaves such values behind (the bundled model held 51,152 of them), and on x86 every
    /// multiply-add that meets one takes a microcode assist: the bundled model ran 2.2x slower than the same network with
    /// fresh weights. No output changes at float32 precision.
    /// </summary>
    internal static void FlushSubnormals(Span<float> values)
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (float.IsSubnormal(values[i]))
            {
                values[i] = 0f;
            }
        }
    }

    /// <summary>Lower-case hex SHA-256 of a file.</summary>
    public static string Sha256Of(string path)
    {
        using FileStream stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}

/// <summary>A model checkpoint or card that cannot be used; the message names the file and the problem.</summary>
public sealed class ModelCheckpointException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ModelCheckpointException() { }

    /// <summary>Creates the exception with its message.</summary>
    public ModelCheckpointException(string message) : base(message) { }

    /// <summary>Creates the exception with its message and cause.</summary>
    public ModelCheckpointException(string message, Exception innerException) : base(message, innerException) { }
}
