using SlidePlugin.Engine.Slides;
using Grpc.Core;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// The folders the sidecar serves slides and data sets from (<c>--slide-root</c>, repeatable; default the working
/// directory), checked as every root is (<see cref="FolderRoots"/>).
/// </summary>
public sealed class SlideRoots(IEnumerable<string> roots) : FolderRoots(roots, RootKind.Slides)
{
    /// <summary>
    /// Opens the slide <paramref name="requested"/> names, the one way services open slides: resolved inside the roots and
    /// checked again after the open (<see cref="FolderRoots.Open{T}"/>).
    /// </summary>
    /// <exception cref="RpcException">As <see cref="FolderRoots.Resolve"/>; PERMISSION_DENIED when the file changed during the open.</exception>
    /// <exception cref="SlideException">OpenSlide cannot open the file.</exception>
    public Slide OpenSlide(string requested) => Open(requested, (path, _) => Slide.Open(path), slide => slide.Dispose());
}
