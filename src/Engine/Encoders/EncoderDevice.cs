using System.Globalization;

namespace SlidePlugin.Engine.Encoders;

/// <summary>Where an encoder runs: the CPU (default) or a CUDA device by index.</summary>
/// <param name="CudaDevice">The CUDA device index, or null for the CPU.</param>
public readonly record struct EncoderDevice(int? CudaDevice)
{
    /// <summary>The CPU.</summary>
    public static EncoderDevice Cpu => default;

    /// <summary>Parses <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    /// <exception cref="FormatException">Any other text.</exception>
    public static EncoderDevice Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Equals("cpu", StringComparison.OrdinalIgnoreCase))
        {
            return Cpu;
        }

        if (text.Equals("cuda", StringComparison.OrdinalIgnoreCase))
        {
            return new EncoderDevice(0);
        }

        return text.StartsWith("cuda:", StringComparison.OrdinalIgnoreCase) && int.TryParse(text.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int index)
            ? new EncoderDevice(index)
            : throw new FormatException($"Device '{text}' is not cpu, cuda or cuda:N.");
    }

    /// <inheritdoc />
    public override string ToString() => CudaDevice is { } index ? $"cuda:{index}" : "cpu";
}
