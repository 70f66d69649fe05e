using SlidePlugin.Engine.Interop;

namespace SlidePlugin.Engine.Tests.Interop;

public sealed class SqliteIsolationTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-sqlite-layout").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void FindBundled_PortableBuild_FindsTheLibraryUnderRuntimes()
    {
        string native = Directory.CreateDirectory(Path.Combine(_folder, "runtimes", "linux-x64", "native")).FullName;
        File.WriteAllBytes(Path.Combine(native, "libe_sqlite3.so"), []);

        Assert.Equal(Path.Combine(native, "libe_sqlite3.so"), SqliteIsolation.FindBundled(_folder, "linux-x64"));
    }

    [Fact]
    public void FindBundled_PublishForOneRuntime_FindsTheLibraryBesideTheProgram()
    {
        // `dotnet publish -r linux-x64` (and ReadyToRun) flattens runtimes/<rid>/native into the output folder; the
        // isolation was skipped there and the first WAL checkpoint crashed in Debian's libsqlite3.
        File.WriteAllBytes(Path.Combine(_folder, "libe_sqlite3.so"), []);

        Assert.Equal(Path.Combine(_folder, "libe_sqlite3.so"), SqliteIsolation.FindBundled(_folder, "linux-x64"));
    }

    [Fact]
    public void FindBundled_NoBundledLibrary_ReturnsNull()
    {
        Assert.Null(SqliteIsolation.FindBundled(_folder, "linux-x64"));
    }

    [Fact]
    public void Ensure_TestHost_LoadsTheBundledLibrary()
    {
        Assert.True(SqliteIsolation.Ensure());
    }
}
