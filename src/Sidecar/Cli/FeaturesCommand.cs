using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Encoders;
using SlidePlugin.Engine.Slides;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>
/// <c>slideplugin features</c>: a slide's tissue tiles through a tile encoder into <c>&lt;stem&gt;.features.safetensors</c>
/// (features [N, D] float32, coords [N, 4] int64, the encoder and tiling in the metadata), as TRIDENT and CLAM keep them.
/// Interrupted, the same command resumes; with the file already there for the same encoder and tiling, it is reused.
/// </summary>
internal static class FeaturesCommand
{
    public static Command Create(SlidePluginCli.GlobalOptions global)
    {
        _ = global;
        var slide = new Argument<FileInfo>("slide") { Description = "Whole-slide image (SVS, NDPI, MRXS, tiled TIFF, ...)." };
        var encoder = new Option<FileInfo>("--encoder") { Description = "Tile encoder: NAME.onnx with its card NAME.json beside it.", Required = true };
        var targetMpp = new Option<double?>("--target-mpp") { Description = "Tile resolution in µm per pixel (default: the encoder card's mpp)." };
        var tileSize = new Option<int?>("--tile-size") { Description = "Tile edge in pixels at the target resolution (default: the card's input size)." };
        var minTissue = new Option<double>("--min-tissue") { Description = "Minimum tissue fraction (0..1) of a kept tile.", DefaultValueFactory = _ => 0.5 };
        var mpp = new Option<double?>("--mpp") { Description = "The slide's own resolution in µm per pixel, for files that lack it." };
        Option<EncoderDevice> device = CliEncoders.DeviceOption();
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for SLIDE.features.safetensors.", Required = true };

        var command = new Command("features", "Encode a slide's tissue tiles with a tile encoder (ONNX) into SLIDE.features.safetensors; resumable.");
        command.Arguments.Add(slide);
        foreach (Option option in new Option[] { encoder, targetMpp, tileSize, minTissue, mpp, device, output })
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            TextWriter stdout = parseResult.InvocationConfiguration.Output, stderr = parseResult.InvocationConfiguration.Error;
            if (!NativeCheck.Passes(stderr, out _))
            {
                return ExitCodes.MissingNativeDependency;
            }

            double minTissueFraction = parseResult.GetValue(minTissue);
            if (minTissueFraction is < 0 or > 1)
            {
                stderr.WriteLine("slideplugin: --min-tissue must be within 0..1.");
                return ExitCodes.Usage;
            }

            var options = new FeatureOptions { TargetMpp = parseResult.GetValue(targetMpp), TileSize = parseResult.GetValue(tileSize), MinTissueFraction = minTissueFraction };
            return await RunAsync(parseResult.GetRequiredValue(slide), parseResult.GetRequiredValue(encoder), parseResult.GetValue(device), parseResult.GetValue(mpp), options,
                parseResult.GetRequiredValue(output), stdout, stderr, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(FileInfo slideFile, FileInfo encoderFile, EncoderDevice device, double? mppOverride, FeatureOptions options,
        DirectoryInfo output, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        if (!CliEncoders.TryLoad(encoderFile, device, stderr, out TileEncoder encoder))
        {
            return ExitCodes.Failure;
        }

        using (encoder)
        {
            if (!CliSlides.TryOpen(slideFile, mppOverride, stderr, out Slide slide, out _, out double mpp))
            {
                return ExitCodes.Failure;
            }

            using (slide)
            {
                var clock = Stopwatch.StartNew();
                var progress = new LineProgress(stderr);
                try
                {
                    (string path, bool reused) = await FeatureExtractor.ExtractAsync(slide, mpp, encoder, options, output.FullName, progress, cancellationToken).ConfigureAwait(false);
                    progress.End();
                    IReadOnlyDictionary<string, string> metadata = SafeTensors.ReadMetadata(path);
                    stdout.WriteLine(reused
                        ? $"{path}: already there for encoder {encoder.Card.Name} and this tiling; reused."
                        : string.Create(CultureInfo.InvariantCulture,
                            $"{path}: {metadata["tile_count"]} tiles x {encoder.Card.OutputDim} features ({encoder.Card.Name}, {metadata["tile_size"]} px at {metadata["mpp"]} µm/px, {encoder.Device}) in {clock.Elapsed.TotalSeconds:0.0} s"));
                    return ExitCodes.Success;
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    progress.End();
                    stdout.WriteLine("Stopped: the batches encoded so far are kept; the same command resumes.");
                    return ExitCodes.Interrupted;
                }
                catch (Exception e) when (e is SlideException or EncoderException or ArgumentException or IOException)
                {
                    progress.End();
                    stderr.WriteLine($"slideplugin: {e.Message}");
                    return ExitCodes.Failure;
                }
            }
        }
    }

    /// <summary>One progress line, rewritten in place (on the caller's thread: Progress{T} would post to the pool).</summary>
    private sealed class LineProgress(TextWriter writer) : IProgress<(int Done, int Total)>
    {
        private bool _written;

        public void Report((int Done, int Total) value)
        {
            writer.Write($"\r{value.Done}/{value.Total} tiles encoded");
            _written = true;
        }

        public void End()
        {
            if (_written)
            {
                writer.WriteLine();
            }
        }
    }
}
