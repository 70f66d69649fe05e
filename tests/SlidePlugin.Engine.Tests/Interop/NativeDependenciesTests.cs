using SlidePlugin.Engine.Interop;

namespace SlidePlugin.Engine.Tests.Interop;

public class NativeDependenciesTests
{
    [Fact]
    public void Check_InstalledLibraries_EachLoadsAndReportsItsVersion()
    {
        IReadOnlyList<NativeDependencyStatus> statuses = NativeDependencies.Check();

        Assert.Equal(["openslide", "vips", "openblas", "turbojpeg", "png"], statuses.Select(s => s.Dependency.LogicalName));
        Assert.All(statuses, s => Assert.True(s.IsLoaded, s.Error));
        // Debian 12's versions: the bindings are written against these ABIs.
        Assert.Equal("3.4.1", statuses[0].Version);
        Assert.StartsWith("8.", statuses[1].Version, StringComparison.Ordinal);
        Assert.StartsWith("OpenBLAS 0.3", statuses[2].Version, StringComparison.Ordinal);
        Assert.StartsWith("1.6.", statuses[4].Version, StringComparison.Ordinal); // the simplified write API needs 1.6.29+
    }

    [Fact]
    public void Check_LibraryFileMissing_ErrorNamesTheDebianPackage()
    {
        var missing = Libraries.Get(Libraries.OpenSlide) with { FileName = "libopenslide-does-not-exist.so.0" };

        NativeDependencyStatus status = Assert.Single(NativeDependencies.Check([missing]));

        Assert.False(status.IsLoaded);
        Assert.Null(status.Version);
        Assert.Contains("libopenslide-does-not-exist.so.0", status.Error, StringComparison.Ordinal);
        Assert.Contains("apt-get install libopenslide0", status.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void EnsureAvailable_LibraryMissing_ThrowsNativeDependencyExceptionNamingThePackage()
    {
        var missing = Libraries.Get(Libraries.Vips) with { FileName = "libvips-does-not-exist.so.42" };

        var error = Assert.Throws<NativeDependencyException>(() => NativeDependencies.EnsureAvailable([missing]));

        Assert.Contains("libvips42", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_LibraryWithoutVersionSymbol_ReportsWrongLibrary()
    {
        // libz is on every Debian system and exports no openslide_get_version: it stands for a wrong library.
        var wrong = Libraries.Get(Libraries.OpenSlide) with { FileName = "libz.so.1" };

        NativeDependencyStatus status = Assert.Single(NativeDependencies.Check([wrong]));

        Assert.False(status.IsLoaded);
        Assert.Contains("openslide_get_version", status.Error, StringComparison.Ordinal);
        Assert.Contains("libopenslide0", status.Error, StringComparison.Ordinal);
    }
}
