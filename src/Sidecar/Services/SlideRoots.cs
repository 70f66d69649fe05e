using System.Runtime.InteropServices;
using SlidePlugin.Engine.Slides;
using Grpc.Core;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// The folders the sidecar serves slides from (<c>--slide-root</c>, repeatable; default the working
/// directory). A request names a slide relative to a root (roots tried in order) or absolutely. The
/// path is refused with PERMISSION_DENIED when it leaves every root, lexically (<c>..</c>) or through a
/// symlink (the real path, resolved by the C library, must lie under a root's real path); it is
/// NOT_FOUND when it stays inside but does not exist.
/// </summary>
public sealed partial class SlideRoots
{
    private readonly string[] _roots;     // as given, made absolute, each ending in '/'
    private readonly string[] _realRoots; // the same with symlinks resolved

    /// <summary>Creates the policy over <paramref name="roots"/>, which must exist.</summary>
    /// <exception cref="DirectoryNotFoundException">A root is missing or not a folder.</exception>
    public SlideRoots(IEnumerable<string> roots)
    {
        ArgumentNullException.ThrowIfNull(roots);
        _roots = roots.Select(root =>
        {
            string full = Path.GetFullPath(root);
            return Directory.Exists(full) ? WithSeparator(full) : throw new DirectoryNotFoundException($"Slide root '{root}' is not a folder.");
        }).Distinct(StringComparer.Ordinal).ToArray();
        _realRoots = _roots.Select(root => WithSeparator(RealPath(root) ?? root)).ToArray();
        if (_roots.Length == 0)
        {
            throw new ArgumentException("At least one slide root is needed.", nameof(roots));
        }
    }

    /// <summary>The roots, absolute.</summary>
    public IReadOnlyList<string> Roots => _roots;

    /// <summary>The real path of the slide (or, with <paramref name="folderAllowed"/>, the data folder) that <paramref name="requested"/> names.</summary>
    /// <exception cref="RpcException">INVALID_ARGUMENT (empty), PERMISSION_DENIED (outside the roots) or NOT_FOUND.</exception>
    public string Resolve(string requested, bool folderAllowed = false)
    {
        if (string.IsNullOrWhiteSpace(requested))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "path is empty: name a slide relative to a --slide-root folder."));
        }

        if (requested.Contains('\0', StringComparison.Ordinal))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "path contains a NUL character."));
        }

        string? insideLexically = null;
        foreach (string root in _roots)
        {
            string candidate = Path.GetFullPath(Path.IsPathRooted(requested) ? requested : Path.Combine(root, requested));
            if (!candidate.StartsWith(root, StringComparison.Ordinal))
            {
                continue;
            }

            insideLexically ??= candidate;
            if (!File.Exists(candidate) && !(folderAllowed && Directory.Exists(candidate)))
            {
                continue;
            }

            string real = RealPath(candidate) ?? candidate;
            if (!_realRoots.Any(r => real.StartsWith(r, StringComparison.Ordinal)))
            {
                throw new RpcException(new Status(StatusCode.PermissionDenied, $"'{requested}' leads outside the slide roots (through a symlink); the server only serves slides under --slide-root."));
            }

            if (!folderAllowed && FileIdentity.Of(real) is not { IsRegularFile: true })
            {
                // A FIFO or device would block OpenSlide's open forever, holding a thread.
                throw new RpcException(new Status(StatusCode.InvalidArgument, $"'{requested}' is not a regular file."));
            }

            return real;
        }

        if (insideLexically is null)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"'{requested}' is outside the slide roots; the server only serves slides under --slide-root ({string.Join(", ", _roots)})."));
        }

        throw new RpcException(new Status(StatusCode.NotFound, $"{(folderAllowed ? "Data" : "Slide")} '{requested}' not found under the slide roots."));
    }

    /// <summary>
    /// Opens the slide <paramref name="requested"/> names, the one way services open slides: resolved inside the roots
    /// (<see cref="Resolve"/>), then checked after the open that the path still names the same file, inside the roots,
    /// so that a folder swapped for a symlink while the slide was opened does not hand out a slide from outside.
    /// </summary>
    /// <exception cref="RpcException">As <see cref="Resolve"/>; PERMISSION_DENIED when the file changed during the open.</exception>
    /// <exception cref="SlideException">OpenSlide cannot open the file.</exception>
    public Slide OpenSlide(string requested) => Open(requested, (path, _) => Slide.Open(path), slide => slide.Dispose());

    /// <summary>
    /// As <see cref="OpenSlide"/>, with <paramref name="open"/> given the real path and the identity of the file it
    /// names (a cache keys its entries by that identity); <paramref name="discard"/> closes what was opened when the
    /// check after the open fails.
    /// </summary>
    internal T Open<T>(string requested, Func<string, FileIdentity, T> open, Action<T> discard)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(discard);
        string real = Resolve(requested);
        FileIdentity before = FileIdentity.Of(real) ?? throw new RpcException(new Status(StatusCode.NotFound, $"Slide '{requested}' not found under the slide roots."));
        T opened = open(real, before); // an engine failure gets its status where every handler's does (SlideStatus)
        if (RealPath(real) != real || FileIdentity.Of(real) != before)
        {
            discard(opened);
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"'{requested}' changed while it was opened; the server only serves slides under --slide-root."));
        }

        return opened;
    }

    private static string WithSeparator(string path) => path.EndsWith('/') ? path : path + "/";

    /// <summary>realpath(3): the canonical path with every symlink resolved, or null when it cannot be resolved.</summary>
    private static string? RealPath(string path)
    {
        IntPtr resolved = NativeRealPath(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            NativeFree(resolved);
        }
    }

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr NativeRealPath(string path, IntPtr resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void NativeFree(IntPtr memory);
}
