using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Logging;
using SlidePlugin.Engine.Interop;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Sidecar.Hosting;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>
/// <c>slideplugin analyze</c>: the main job. Scores a slide with an A-MIL model and writes attention
/// heatmaps, QuPath GeoJSON and CSV. Until the analysis pipeline lands (issue #7) it opens the slide,
/// reports what the engine can read today, and exits with <see cref="ExitCodes.NotImplemented"/>.
/// </summary>
internal static partial class AnalyzeCommand
{
    public static Command Create(SlidePluginCli.GlobalOptions global)
    {
        var slide = new Argument<FileInfo>("slide") { Description = "Whole-slide image (SVS, NDPI, MRXS, tiled TIFF, ...)." };
        var model = new Option<FileInfo?>("--model") { Description = "Model checkpoint (.safetensors with its model card); default: the bundled model." };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Folder for the heatmap, GeoJSON, CSV and summary (default: ./<slide name>.analysis)." };
        var mpp = new Option<double?>("--mpp") { Description = "The slide's resolution in µm per pixel, for files that lack it (many do)." };
        var server = new Option<Uri?>("--server") { Description = "Run on a running sidecar (e.g. http://127.0.0.1:50051) instead of in-process." };

        var command = new Command("analyze", "Score a slide with attention-based MIL and write heatmaps, QuPath GeoJSON and CSV.");
        command.Arguments.Add(slide);
        command.Options.Add(model);
        command.Options.Add(output);
        command.Options.Add(mpp);
        command.Options.Add(server);
        command.SetAction(parseResult =>
        {
            TextWriter stdout = parseResult.InvocationConfiguration.Output;
            TextWriter stderr = parseResult.InvocationConfiguration.Error;
            if (parseResult.GetValue(server) is not null)
            {
                return SlidePluginCli.ReportNotImplemented(parseResult, "analysis on a running sidecar ('--server')", 7);
            }

            if (!NativeCheck.Passes(stderr, out IReadOnlyList<NativeDependencyStatus> natives))
            {
                return ExitCodes.MissingNativeDependency;
            }

            using ILoggerFactory loggerFactory = LoggingSetup.CreateLoggerFactory(SlidePluginCli.LogSettingsOf(parseResult, global));
            ILogger logger = loggerFactory.CreateLogger("SlidePlugin.Analyze");
            foreach (NativeDependencyStatus native in natives)
            {
                Log.NativeLibraryLoaded(logger, native.Dependency.DisplayName, native.FileName, native.Version ?? "?");
            }

            return Run(parseResult.GetRequiredValue(slide), parseResult.GetValue(mpp), stdout, stderr);
        });
        return command;
    }

    private static int Run(FileInfo slideFile, double? mppOverride, TextWriter stdout, TextWriter stderr)
    {
        if (!CliSlides.TryOpen(slideFile, mppOverride, stderr, out Slide slide, out SlideResolution resolution, out double mpp))
        {
            return ExitCodes.Failure;
        }

        using (slide)
        {
            var invariant = CultureInfo.InvariantCulture;
            stdout.WriteLine(string.Create(invariant, $"slide       {slideFile.FullName}"));
            stdout.WriteLine(string.Create(invariant, $"vendor      {slide.Vendor}"));
            stdout.WriteLine(string.Create(invariant, $"dimensions  {slide.Dimensions.Width} x {slide.Dimensions.Height} px"));
            stdout.WriteLine(string.Create(invariant, $"mpp         {mpp:0.####} µm/px ({resolution.Source}): {resolution.Explanation}"));
            for (int level = 0; level < slide.LevelCount; level++)
            {
                (long w, long h) = slide.LevelDimensions[level];
                stdout.WriteLine(string.Create(invariant, $"level {level}     {w} x {h} px, downsample {slide.LevelDownsamples[level]:0.###}"));
            }

            stdout.WriteLine(string.Create(invariant, $"associated  {string.Join(", ", slide.AssociatedImageDimensions.Keys)}"));
        }

        stderr.WriteLine("slideplugin: the slide was read; A-MIL scoring and the heatmap/GeoJSON/CSV outputs are not implemented yet (issue #7).");
        return ExitCodes.NotImplemented;
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Debug, Message = "{Library} loaded from {FileName}, version {Version}")]
        public static partial void NativeLibraryLoaded(ILogger logger, string library, string fileName, string version);
    }
}
