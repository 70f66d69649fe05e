using SlidePlugin.Engine.Interop;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>Runs the engine's native-library check before a verb starts work.</summary>
internal static class NativeCheck
{
    /// <summary>
    /// True when every native library loads. Otherwise writes one line per missing library, naming its
    /// Debian package, and returns false: the caller exits with <see cref="ExitCodes.MissingNativeDependency"/>. Also
    /// warns when an inherited OpenBLAS kernel setting is slower than the engine's own choice.
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

        if (missing.Count == 0 && OpenBlasCoreType.SlowerInheritedWarning() is { } warning)
        {
            error.WriteLine($"slideplugin: warning: {warning}");
        }

        return missing.Count == 0;
    }
}
