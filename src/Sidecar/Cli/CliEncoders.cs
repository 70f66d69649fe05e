using System.CommandLine;
using SlidePlugin.Engine.Encoders;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>Tile encoders for CLI verbs: one --device option, and loading with failures as one line on stderr.</summary>
internal static class CliEncoders
{
    /// <summary>
    /// <c>--device cpu|cuda|cuda:N</c>, parsed when the command line is: a bad value is a usage error naming the forms.
    /// </summary>
    public static Option<EncoderDevice> DeviceOption(string description = "Where the encoder runs: cpu, cuda or cuda:N (docs/gpu.md).") => new("--device")
    {
        Description = description,
        DefaultValueFactory = _ => EncoderDevice.Cpu,
        CustomParser = result =>
        {
            try
            {
                return EncoderDevice.Parse(result.Tokens.Single().Value);
            }
            catch (FormatException e)
            {
                result.AddError($"--device: {e.Message}");
                return EncoderDevice.Cpu;
            }
        },
    };

    /// <summary>Loads <paramref name="file"/> on <paramref name="device"/>; on failure writes why and returns false.</summary>
    public static bool TryLoad(FileInfo file, EncoderDevice device, TextWriter stderr, out TileEncoder encoder)
    {
        try
        {
            encoder = TileEncoder.Load(file.FullName, device);
            return true;
        }
        catch (EncoderException e)
        {
            stderr.WriteLine($"slideplugin: {e.Message}");
            encoder = null!;
            return false;
        }
    }
}
