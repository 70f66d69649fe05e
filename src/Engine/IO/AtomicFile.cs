using System.Text;

namespace SlidePlugin.Engine.IO;

/// <summary>
/// Writes files so that a reader (or a crash) never sees half of one: the bytes go to a temporary file
/// beside the target, which is then renamed over it (atomic on one file system).
/// </summary>
public static partial class AtomicFile
{
    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, string.Empty, temporary => File.WriteAllBytes(temporary, bytes));

    /// <summary>
    /// Lets <paramref name="writeTo"/> write a temporary file (its name ends in <paramref name="suffix"/>, for
    /// writers that pick a format by suffix), then renames it to <paramref name="path"/>; on failure nothing is left.
    /// </summary>
    public static void Write(string path, string suffix, Action<string> writeTo) => WriteTogether([new AtomicPart(path, suffix, writeTo)]);

    /// <summary>
    /// Writes files that belong together (a model's weights and its card): each part's writer fills a temporary beside
    /// its target, in order (a later writer may use what an earlier one produced, such as a hash), and only when every
    /// part is written and on disk are they renamed, in order. A failure in any writer leaves none of the files and no
    /// temporaries, and the previous files as they were. The renames themselves are separate steps: after a crash
    /// between two, the earlier targets are new and the later old, so readers check that the files agree (a card
    /// names its weights' SHA-256).
    /// </summary>
    public static void WriteTogether(IReadOnlyList<AtomicPart> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        string[] temporaries = [.. parts.Select(p => TemporaryPathFor(p.Path) + p.Suffix)];
        try
        {
            for (int i = 0; i < parts.Count; i++)
            {
                parts[i].WriteTo(temporaries[i]);
                // On disk before it gets its name, and the name on disk before the caller goes on: after a power cut the
                // file is the old one or the whole new one, never an empty or short file under the new name.
                using var written = new FileStream(temporaries[i], FileMode.Open, FileAccess.ReadWrite);
                written.Flush(flushToDisk: true);
            }

            for (int i = 0; i < parts.Count; i++)
            {
                File.Move(temporaries[i], parts[i].Path, overwrite: true);
            }

            foreach (string folder in parts.Select(p => Path.GetDirectoryName(Path.GetFullPath(p.Path))!).Distinct(StringComparer.Ordinal))
            {
                SyncFolder(folder);
            }
        }
        finally
        {
            foreach (string temporary in temporaries)
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>fsync(2) of a folder, so that a rename in it is durable; best effort where the file system refuses.</summary>
    private static void SyncFolder(string folder)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        int descriptor = NativeOpen(folder, ReadOnlyDirectory);
        if (descriptor >= 0)
        {
            _ = NativeFsync(descriptor);
            _ = NativeClose(descriptor);
        }
    }

    private const int ReadOnlyDirectory = 0x10000; // O_RDONLY | O_DIRECTORY

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "open", StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    private static partial int NativeOpen(string path, int flags);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int NativeFsync(int descriptor);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "close")]
    private static partial int NativeClose(int descriptor);

    /// <summary>Writes UTF-8 <paramref name="text"/> (no BOM) to <paramref name="path"/> atomically.</summary>
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, Encoding.UTF8.GetBytes(text));

    /// <summary>A hidden, unique temporary name in the target's folder (same file system, so the rename is atomic).</summary>
    public static string TemporaryPathFor(string path)
    {
        string full = Path.GetFullPath(path);
        return Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.partial");
    }
}

/// <summary>One file of <see cref="AtomicFile.WriteTogether"/>: its target, the suffix its temporary needs, and what writes the temporary.</summary>
public sealed record AtomicPart(string Path, string Suffix, Action<string> WriteTo);
