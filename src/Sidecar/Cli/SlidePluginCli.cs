using System.CommandLine;
using Serilog.Events;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>
/// The <c>slideplugin</c> command line: one verb per job (<c>serve</c>, <c>analyze</c>, <c>train</c>,
/// <c>tiles</c>), each in its own file, sharing the logging options defined here.
/// </summary>
internal static class SlidePluginCli
{
    /// <summary>Options every verb accepts (given before or after the verb).</summary>
    internal sealed class GlobalOptions
    {
        public Option<LogEventLevel> LogLevel { get; } = new("--log-level")
        {
            Description = "Lowest log level written: Verbose, Debug, Information, Warning, Error, Fatal.",
            DefaultValueFactory = _ => LogEventLevel.Information,
            Recursive = true,
        };

        public Option<FileInfo?> LogFile { get; } = new("--log-file")
        {
            Description = "Also write structured log events to this file, one JSON object per line.",
            Recursive = true,
        };
    }

    /// <summary>Builds the command tree.</summary>
    public static RootCommand BuildRootCommand()
    {
        var global = new GlobalOptions();
        var root = new RootCommand(
            "SlidePlugin: a gRPC sidecar for whole-slide images. Reads slides through OpenSlide, finds and tiles tissue, " +
            "and scores slides with attention-based multiple instance learning (A-MIL).");
        root.Options.Add(global.LogLevel);
        root.Options.Add(global.LogFile);
        root.Subcommands.Add(ServeCommand.Create(global));
        root.Subcommands.Add(AnalyzeCommand.Create(global));
        root.Subcommands.Add(TrainCommand.Create(global));
        root.Subcommands.Add(TilesCommand.Create(global));
        root.Subcommands.Add(FeaturesCommand.Create(global));
        root.Subcommands.Add(DatasetCommand.Create(global));
        root.Subcommands.Add(SegmentCommand.Create(global));
        root.Subcommands.Add(CohortCommand.Create(global));
        return root;
    }

    /// <summary>Parses and runs <paramref name="args"/>; <paramref name="output"/> and <paramref name="error"/> default to the console.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null, CancellationToken cancellationToken = default)
    {
        ParseResult parseResult = BuildRootCommand().Parse(args);
        var configuration = new InvocationConfiguration
        {
            Output = output ?? Console.Out,
            Error = error ?? Console.Error,
            // Verbs handle SIGINT/SIGTERM themselves: 'serve' shuts down gracefully over its grace period,
            // which System.CommandLine's default (kill after 2 s) would cut short.
            ProcessTerminationTimeout = null,
        };
        int exitCode = await parseResult.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
        // System.CommandLine reports parse errors with 1; the README documents 2 for usage errors.
        return parseResult.Errors.Count > 0 ? ExitCodes.Usage : exitCode;
    }

    /// <summary>The log settings chosen on the command line.</summary>
    internal static Hosting.LogSettings LogSettingsOf(ParseResult parseResult, GlobalOptions global) =>
        new(parseResult.GetValue(global.LogLevel), parseResult.GetValue(global.LogFile)?.FullName);
}
