using System.Text.Json;
using System.Text.Json.Serialization;

namespace SlidePlugin.Engine.Encoders;

/// <summary>
/// What a tile encoder expects and gives, beside its ONNX file as <c>&lt;name&gt;.json</c>: tiles of
/// <see cref="InputSize"/>² px read at <see cref="Mpp"/> µm/px, RGB scaled to [0, 1], normalised per channel by
/// <see cref="Mean"/> and <see cref="Std"/>, in; <see cref="OutputDim"/> features per tile, out.
/// </summary>
public sealed record EncoderCard
{
    /// <summary>The encoder's name (e.g. <c>uni-v1</c>, <c>clam-resnet50</c>).</summary>
    [JsonPropertyName("name")]
    public required string Name { get; init; }

    /// <summary>Edge of the square input in pixels (224 for most).</summary>
    [JsonPropertyName("input_size")]
    public required int InputSize { get; init; }

    /// <summary>The resolution the encoder was trained at, µm per pixel (0.5 for 20x models).</summary>
    [JsonPropertyName("mpp")]
    public required double Mpp { get; init; }

    /// <summary>Per-channel mean (R, G, B) subtracted from [0, 1] pixels.</summary>
    [JsonPropertyName("mean")]
    public required float[] Mean { get; init; }

    /// <summary>Per-channel standard deviation (R, G, B) the centred pixels are divided by.</summary>
    [JsonPropertyName("std")]
    public required float[] Std { get; init; }

    /// <summary>Features per tile.</summary>
    [JsonPropertyName("output_dim")]
    public required int OutputDim { get; init; }

    /// <summary>The weights' licence, as its authors state it.</summary>
    [JsonPropertyName("licence")]
    public string Licence { get; init; } = "";

    /// <summary>Where the weights come from (paper, repository, export script).</summary>
    [JsonPropertyName("source")]
    public string Source { get; init; } = "";

    /// <summary>Reads and checks a card.</summary>
    /// <exception cref="EncoderException">The file is missing, not JSON, or a field is absent or out of range; the message names it.</exception>
    public static EncoderCard Load(string path)
    {
        EncoderCard? card;
        try
        {
            card = JsonSerializer.Deserialize<EncoderCard>(File.ReadAllBytes(path));
        }
        catch (FileNotFoundException)
        {
            throw new EncoderException($"The encoder's card '{path}' is missing: an encoder is NAME.onnx with NAME.json beside it (input_size, mpp, mean, std, output_dim).");
        }
        catch (JsonException e)
        {
            throw new EncoderException($"The encoder's card '{path}' is not a valid card: {e.Message}");
        }

        if (card is null)
        {
            throw new EncoderException($"The encoder's card '{path}' is empty.");
        }

        string? problem = card switch
        {
            { InputSize: < 8 or > 4096 } => $"input_size {card.InputSize} is not within 8..4096",
            { Mpp: <= 0 or > 100 } or { Mpp: double.NaN } => $"mpp {card.Mpp} is not a resolution in µm per pixel",
            { Mean.Length: not 3 } => $"mean has {card.Mean.Length} values, not 3 (R, G, B)",
            { Std.Length: not 3 } => $"std has {card.Std.Length} values, not 3 (R, G, B)",
            _ when card.Std.Any(s => !(s > 0)) => "std has a value that is not positive",
            { OutputDim: < 1 } => $"output_dim {card.OutputDim} is not positive",
            _ => null,
        };
        return problem is null ? card : throw new EncoderException($"The encoder's card '{path}': {problem}.");
    }
}
