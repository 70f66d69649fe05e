using System.Runtime.InteropServices;

namespace SlidePlugin.Engine.Interop;

/// <summary>
/// SQLite is in this process twice: Debian's libsqlite3 (a dependency of OpenSlide, made global when libvips loads its
/// OpenSlide module with RTLD_GLOBAL) and the e_sqlite3 that Microsoft.Data.Sqlite bundles. Left alone, e_sqlite3's
/// calls to its own exported functions bind to the global libsqlite3 (a WAL checkpoint jumped into the other library and
/// crashed). Loading e_sqlite3 first with RTLD_DEEPBIND makes it bind to itself; Microsoft.Data.Sqlite's later load of
/// the same file returns this handle.
/// </summary>
internal static partial class SqliteIsolation
{
    private const int RtldNow = 0x2;
    private const int RtldDeepBind = 0x8;
    private const string LibraryFile = "libe_sqlite3.so";
    private static readonly Lazy<bool> Loaded = new(Load);

    /// <summary>Loads the bundled e_sqlite3 bound to itself, once; false when it is not beside the program (nothing to do).</summary>
    public static bool Ensure() => Loaded.Value;

    private static bool Load()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        string? path = FindBundled(AppContext.BaseDirectory, RuntimeInformation.RuntimeIdentifier);
        return path is not null && DlOpen(path, RtldNow | RtldDeepBind) != IntPtr.Zero;
    }

    /// <summary>
    /// Where the bundled e_sqlite3 is: under runtimes/&lt;rid&gt;/native in a portable build, beside the program in a
    /// publish for one runtime identifier (-r linux-x64, ReadyToRun, self-contained); null when neither has it.
    /// </summary>
    internal static string? FindBundled(string baseDirectory, string runtimeIdentifier)
    {
        string[] candidates =
        [
            Path.Combine(baseDirectory, "runtimes", runtimeIdentifier, "native", LibraryFile),
            Path.Combine(baseDirectory, LibraryFile),
        ];
        return candidates.FirstOrDefault(File.Exists);
    }

    [LibraryImport("libc", EntryPoint = "dlopen", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr DlOpen(string path, int flags);
}
