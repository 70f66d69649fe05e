using SlidePlugin.Sidecar.Cli;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Cli;

/// <summary>The real executable, started as a user would, with a native library made unloadable.</summary>
public class NativeStartupTests
{
    private static readonly string Executable = Path.Combine(AppContext.BaseDirectory, "slideplugin.dll");

    [Theory]
    [InlineData("SLIDEPLUGIN_NATIVE_OPENSLIDE", "libopenslide0")]
    [InlineData("SLIDEPLUGIN_NATIVE_VIPS", "libvips42")]
    [InlineData("SLIDEPLUGIN_NATIVE_OPENBLAS", "libopenblas0")]
    [InlineData("SLIDEPLUGIN_NATIVE_TURBOJPEG", "libturbojpeg0")]
    [InlineData("SLIDEPLUGIN_NATIVE_PNG", "libpng16-16")]
    public async Task Start_NativeLibraryMissing_ExitsWithMessageNamingThePackage(string variable, string package)
    {
        ProcessResult result = await ExternalProcess.RunAsync(
            "dotnet",
            [Executable, "analyze", TestData.Path("slides", "CMU-1-Small-Region.svs")],
            new Dictionary<string, string?> { [variable] = "libslideplugin-missing.so.0" });

        Assert.Equal(ExitCodes.MissingNativeDependency, result.ExitCode);
        Assert.Contains($"apt-get install {package}", result.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("TypeInitializationException", result.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.StandardError, StringComparison.Ordinal); // no stack trace
    }

    [Fact]
    public async Task Start_Help_PrintsFromTheRealExecutable()
    {
        ProcessResult result = await ExternalProcess.RunAsync("dotnet", [Executable, "--help"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("slideplugin [command] [options]", result.StandardOutput, StringComparison.Ordinal);
    }
}
