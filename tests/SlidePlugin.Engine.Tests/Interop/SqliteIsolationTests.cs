using SlidePlugin.Engine.Interop;

namespace SlidePlugin.Engine.Tests.Interop;

public class SqliteIsolationTests
{
    [Fact]
    public void FindBundled_PortableBuild_FindsTheLibraryUnderRuntimes()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-sqlite-layout").FullName;
        try
        {
            string native = Directory.CreateDirectory(Path.Combine(folder, "runtimes", "linux-x64", "native")).FullName;
            File.WriteAllBytes(Path.Combine(native, "libe_sqlite3.so"), []);

            Assert.Equal(Path.Combine(native, "libe_sqlite3.so"), SqliteIsolation.FindBundled(folder, "linux-x64"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void FindBundled_PublishForOneRuntime_FindsTheLibraryBesideTheProgram()
    {
        // `dotnet publish -r linux-x64` (and ReadyToRun) flattens runtimes/<rid>/native into the output folder; the
        // isolation was skipped there and the first WAL checkpoint crashed in Debian's libsqlite3.
        string folder = Directory.CreateTempSubdirectory("slideplugin-sqlite-layout").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(folder, "libe_sqlite3.so"), []);

            Assert.Equal(Path.Combine(folder, "libe_sqlite3.so"), SqliteIsolation.FindBundled(folder, "linux-x64"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void FindBundled_NoBundledLibrary_ReturnsNull()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-sqlite-layout").FullName;
        try
        {
            Assert.Null(SqliteIsolation.FindBundled(folder, "linux-x64"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Ensure_TestHost_LoadsTheBundledLibrary()
    {
        Assert.True(SqliteIsolation.Ensure());
    }
}
