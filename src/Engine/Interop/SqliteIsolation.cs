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
    private static readonly Lazy<bool> Loaded = new(Load);

    /// <summary>Loads the bundled e_sqlite3 bound to itself, once; false when it is not beside the program (nothing to do).</summary>
    public static bool Ensure() => Loaded.Value;

    private static bool Load()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        string path = Path.Combine(AppContext.BaseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier, "native", "libe_sqlite3.so");
        return File.Exists(path) && DlOpen(path, RtldNow | RtldDeepBind) != IntPtr.Zero;
    }

    [LibraryImport("libc", EntryPoint = "dlopen", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr DlOpen(string path, int flags);
}
