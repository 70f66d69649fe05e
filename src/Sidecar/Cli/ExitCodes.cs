namespace SlidePlugin.Sidecar.Cli;

/// <summary>Process exit codes of <c>slideplugin</c>, documented in the README.</summary>
internal static class ExitCodes
{
    /// <summary>The verb did its job.</summary>
    public const int Success = 0;

    /// <summary>The verb failed (bad input, unreadable slide, ...); the message says why.</summary>
    public const int Failure = 1;

    /// <summary>The command line did not parse.</summary>
    public const int Usage = 2;

    /// <summary>Stopped by Ctrl+C (128 + SIGINT); what was finished is kept and the same command resumes.</summary>
    public const int Interrupted = 130;

    /// <summary>A native library is missing; the message names the Debian package (sysexits EX_UNAVAILABLE).</summary>
    public const int MissingNativeDependency = 69;
}
