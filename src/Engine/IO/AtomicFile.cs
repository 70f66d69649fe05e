using System.Text;

namespace SlidePlugin.Engine.IO;

/// <summary>
/// Writes files so that a reader (or a crash) never sees half of one: the bytes go to a temporary file
/// beside the target, which is then renamed over it (atomic on one file system).
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, string.Empty, temporary => File.WriteAllBytes(temporary, bytes));

    /// <summary>
    /// Lets <paramref name="writeTo"/> write a temporary file (its name ends in <paramref name="suffix"/>, for
    /// writers that pick a format by suffix), then renames it to <paramref name="path"/>; on failure nothing is left.
    /// </summary>
    public static void Write(string path, string suffix, Action<string> writeTo)
    {
        ArgumentNullException.ThrowIfNull(writeTo);
        string temporary = TemporaryPathFor(path) + suffix;
        try
        {
            writeTo(temporary);
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>Writes UTF-8 <paramref name="text"/> (no BOM) to <paramref name="path"/> atomically.</summary>
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, Encoding.UTF8.GetBytes(text));

    /// <summary>A hidden, unique temporary name in the target's folder (same file system, so the rename is atomic).</summary>
    public static string TemporaryPathFor(string path)
    {
        string full = Path.GetFullPath(path);
        return Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.partial");
    }
}
