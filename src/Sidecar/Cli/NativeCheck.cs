using SlidePlugin.Engine.Interop;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>Runs the engine's native-library check before a verb starts work.</summary>
internal static class NativeCheck
{
    /// <summary>
    /// True when every native library loads. Otherwise writes one line per missing library, naming its
    /// Debian package, and returns false: the caller exits with <see cref="ExitCodes.MissingNativeDependency"/>.
    /// </summary>
    public static bool Passes(TextWriter error, out IReadOnlyList<NativeDependencyStatus> statuses)
    {
        ArgumentNullException.ThrowIfNull(error);
        statuses = NativeDependencies.Check();
        var missing = statuses.Where(s => !s.IsLoaded).ToList();
        foreach (NativeDependencyStatus status in missing)
        {
            error.WriteLine($"slideplugin: {status.Error}");
        }

        return missing.Count == 0;
    }
}
