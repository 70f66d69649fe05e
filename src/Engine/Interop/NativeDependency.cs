namespace SlidePlugin.Engine.Interop;

/// <summary>One native library the engine needs at run time.</summary>
/// <param name="LogicalName">The name used in <c>[LibraryImport]</c>, e.g. <c>openslide</c>.</param>
/// <param name="DisplayName">Human name, e.g. <c>OpenSlide</c>.</param>
/// <param name="FileName">The shared object the loader looks for, e.g. <c>libopenslide.so.0</c>.</param>
/// <param name="DebianPackage">The Debian package that installs it, e.g. <c>libopenslide0</c>.</param>
/// <param name="VersionSymbol">An exported <c>const char *f(void)</c> that reports the library's version, or, when
/// <paramref name="ReportsVersion"/> is false, any export that proves it is the right library.</param>
/// <param name="ReportsVersion">False for libraries without a version call (TurboJPEG).</param>
public sealed record NativeDependency(
    string LogicalName,
    string DisplayName,
    string FileName,
    string DebianPackage,
    string VersionSymbol,
    bool ReportsVersion = true);

/// <summary>What loading one native dependency found.</summary>
/// <param name="Dependency">The library looked for.</param>
/// <param name="FileName">The file name tried (after any override).</param>
/// <param name="Version">The version the library reports, when it loaded.</param>
/// <param name="Error">Why it did not load, when it did not.</param>
public sealed record NativeDependencyStatus(NativeDependency Dependency, string FileName, string? Version, string? Error)
{
    /// <summary>True when the library loaded and reported its version.</summary>
    public bool IsLoaded => Error is null;
}

/// <summary>A native library is missing; the message names the Debian package that provides it.</summary>
public sealed class NativeDependencyException : DllNotFoundException
{
    /// <summary>Creates the exception for a library that could not be loaded.</summary>
    public NativeDependencyException(NativeDependency dependency, string fileName)
        : base(NativeDependencies.MissingMessage(dependency, fileName))
    {
        Dependency = dependency;
    }

    /// <summary>The library that is missing.</summary>
    public NativeDependency? Dependency { get; }

    /// <summary>Creates the exception with a message of its own.</summary>
    public NativeDependencyException() { }

    /// <summary>Creates the exception with a message of its own.</summary>
    public NativeDependencyException(string message) : base(message) { }

    /// <summary>Creates the exception with a message of its own and its cause.</summary>
    public NativeDependencyException(string message, Exception innerException) : base(message, innerException) { }
}
