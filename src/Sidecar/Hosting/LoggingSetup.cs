using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Events;
using Serilog.Extensions.Logging;
using Serilog.Formatting.Json;

namespace SlidePlugin.Sidecar.Hosting;

/// <summary>Where log lines go and how many: console always, a JSON-lines file optionally.</summary>
/// <param name="MinimumLevel">Lowest level written.</param>
/// <param name="JsonFile">When set, every event is also written to this file as one JSON object per line.</param>
internal sealed record LogSettings(LogEventLevel MinimumLevel, string? JsonFile);

/// <summary>
/// Builds the Serilog pipeline and hands it to Microsoft.Extensions.Logging, so that the engine,
/// the CLI and ASP.NET Core all log through one <see cref="ILoggerFactory"/>.
/// </summary>
internal static class LoggingSetup
{
    /// <summary>Creates the logger factory. Console lines go to stderr so that stdout stays for results.</summary>
    public static ILoggerFactory CreateLoggerFactory(LogSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return new SerilogLoggerFactory(CreateSerilogLogger(settings), dispose: true);
    }

    /// <summary>Creates the Serilog logger behind <see cref="CreateLoggerFactory"/>.</summary>
    public static Serilog.Core.Logger CreateSerilogLogger(LogSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        LoggerConfiguration configuration = new LoggerConfiguration()
            .MinimumLevel.Is(settings.MinimumLevel)
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .MinimumLevel.Override("Grpc", LogEventLevel.Warning) // our interceptor writes the one line per call
            .MinimumLevel.Override("Microsoft.Hosting.Lifetime", LogEventLevel.Information)
            .Enrich.FromLogContext()
            .WriteTo.Console(
                outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}",
                standardErrorFromLevel: LogEventLevel.Verbose,
                formatProvider: System.Globalization.CultureInfo.InvariantCulture);
        if (!string.IsNullOrEmpty(settings.JsonFile))
        {
            configuration = configuration.WriteTo.File(new JsonFormatter(renderMessage: true), settings.JsonFile);
        }

        Serilog.Core.Logger logger = configuration.CreateLogger();
        SlidePlugin.Engine.EngineLog.LoggerFactory = new SerilogLoggerFactory(logger);
        return logger;
    }
}
