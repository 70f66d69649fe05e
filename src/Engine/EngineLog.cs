using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace SlidePlugin.Engine;

/// <summary>
/// Where the engine's log lines go: the host sets <see cref="LoggerFactory"/> once at start (the sidecar hands it
/// its Serilog pipeline); until then they go nowhere.
/// </summary>
public static class EngineLog
{
    private static ILoggerFactory s_factory = NullLoggerFactory.Instance;

    /// <summary>The factory engine loggers are created from.</summary>
    public static ILoggerFactory LoggerFactory
    {
        get => Volatile.Read(ref s_factory);
        set => Volatile.Write(ref s_factory, value ?? NullLoggerFactory.Instance);
    }

    internal static ILogger For(string category) => LoggerFactory.CreateLogger(category);
}
