using System.Runtime.InteropServices;
using Grpc.Core;

namespace SlidePlugin.Sidecar.Services;

/// <summary>What a set of roots holds, for its messages: the noun, the option that sets the roots, what the server does with the files.</summary>
/// <param name="Noun">"slide" or "model".</param>
/// <param name="Option">The serve option that names the roots: <c>--slide-root</c>, <c>--model-root</c>.</param>
/// <param name="Verb">What the server does with such files: "serves", "loads".</param>
/// <param name="Subject">How a refusal names the requested path: slides as <c>'path'</c>, models as <c>The model 'path'</c>.</param>
public sealed record RootKind(string Noun, string Option, string Verb, string Subject)
{
    /// <summary>Slides and data sets (<c>--slide-root</c>).</summary>
    public static RootKind Slides { get; } = new("slide", "--slide-root", "serves", "'{0}'");

    /// <summary>Model checkpoints and tile encoders (<c>--model-root</c>).</summary>
    public static RootKind Models { get; } = new("model", "--model-root", "loads", "The model '{0}'");

    /// <summary>The requested path as refusals name it.</summary>
    public string SubjectOf(string requested) => string.Format(System.Globalization.CultureInfo.InvariantCulture, Subject, requested);
}

/// <summary>
/// The one way a requested path is checked against folders the server may read (<see cref="SlideRoots"/>,
/// <see cref="ModelRoots"/>). A request names a file relative to a root (roots tried in order) or absolutely. The path is
/// refused with PERMISSION_DENIED when it leaves every root, lexically (<c>..</c>) or through a symlink (the real path,
/// resolved by the C library, must lie under a root's real path); it is NOT_FOUND when it stays inside but does not exist.
/// </summary>
public abstract partial class FolderRoots
{
    private readonly string[] _roots;     // as given, made absolute, each ending in '/'
    private readonly string[] _realRoots; // the same with symlinks resolved

    /// <summary>Creates the policy over <paramref name="roots"/>, which must exist.</summary>
    /// <exception cref="DirectoryNotFoundException">A root is missing or not a folder.</exception>
    protected FolderRoots(IEnumerable<string> roots, RootKind kind)
    {
        ArgumentNullException.ThrowIfNull(roots);
        ArgumentNullException.ThrowIfNull(kind);
        Kind = kind;
        string title = char.ToUpperInvariant(kind.Noun[0]) + kind.Noun[1..];
        _roots = roots.Select(root =>
        {
            string full = Path.GetFullPath(root);
            return Directory.Exists(full) ? WithSeparator(full) : throw new DirectoryNotFoundException($"{title} root '{root}' is not a folder.");
        }).Distinct(StringComparer.Ordinal).ToArray();
        _realRoots = _roots.Select(root => WithSeparator(RealPath(root) ?? root)).ToArray();
        if (_roots.Length == 0)
        {
            throw new ArgumentException($"At least one {kind.Noun} root is needed.", nameof(roots));
        }
    }

    /// <summary>What the roots hold.</summary>
    public RootKind Kind { get; }

    /// <summary>The roots, absolute.</summary>
    public IReadOnlyList<string> Roots => _roots;

    /// <summary>The real path of the file (or, with <paramref name="folderAllowed"/>, the data folder) that <paramref name="requested"/> names.</summary>
    /// <exception cref="RpcException">INVALID_ARGUMENT (empty), PERMISSION_DENIED (outside the roots) or NOT_FOUND.</exception>
    public string Resolve(string requested, bool folderAllowed = false)
    {
        if (string.IsNullOrWhiteSpace(requested))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"path is empty: name a {Kind.Noun} relative to a {Kind.Option} folder."));
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
            if (!IsUnderRealRoot(real))
            {
                throw new RpcException(new Status(StatusCode.PermissionDenied,
                    $"{Kind.SubjectOf(requested)} leads outside the {Kind.Noun} roots (through a symlink); the server only {Kind.Verb} {Kind.Noun}s under {Kind.Option}."));
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
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"{Kind.SubjectOf(requested)} is outside the {Kind.Noun} roots; the server only {Kind.Verb} {Kind.Noun}s under {Kind.Option} ({string.Join(", ", _roots)})."));
        }

        throw new RpcException(new Status(StatusCode.NotFound, $"{(folderAllowed ? "Data" : TitleOf(Kind))} '{requested}' not found under the {Kind.Noun} roots."));
    }

    /// <summary>
    /// Opens what <paramref name="requested"/> names: resolved inside the roots (<see cref="Resolve"/>), then checked after
    /// the open that the path still names the same file, inside the roots, so that a folder swapped for a symlink while the
    /// file was opened does not hand out a file from outside. <paramref name="open"/> is given the real path and the
    /// identity of the file it names (a cache keys its entries by that identity); <paramref name="discard"/> closes what was
    /// opened when the check after the open fails.
    /// </summary>
    /// <exception cref="RpcException">As <see cref="Resolve"/>; PERMISSION_DENIED when the file changed during the open.</exception>
    internal T Open<T>(string requested, Func<string, FileIdentity, T> open, Action<T> discard)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(discard);
        string real = Resolve(requested);
        FileIdentity before = FileIdentity.Of(real) ?? throw new RpcException(new Status(StatusCode.NotFound, $"{TitleOf(Kind)} '{requested}' not found under the {Kind.Noun} roots."));
        T opened = open(real, before); // an engine failure gets its status where every handler's does (SlideStatus)
        if (RealPath(real) != real || FileIdentity.Of(real) != before)
        {
            discard(opened);
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"'{requested}' changed while it was opened; the server only {Kind.Verb} {Kind.Noun}s under {Kind.Option}."));
        }

        return opened;
    }

    /// <summary>Whether <paramref name="realPath"/> (symlinks already resolved) lies under a root's real path.</summary>
    protected bool IsUnderRealRoot(string realPath) => _realRoots.Any(r => realPath.StartsWith(r, StringComparison.Ordinal));

    private static string TitleOf(RootKind kind) => char.ToUpperInvariant(kind.Noun[0]) + kind.Noun[1..];

    private static string WithSeparator(string path) => path.EndsWith('/') ? path : path + "/";

    /// <summary>realpath(3): the canonical path with every symlink resolved, or null when it cannot be resolved.</summary>
    internal static string? RealPath(string path)
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
