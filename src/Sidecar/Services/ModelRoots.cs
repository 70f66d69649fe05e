namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// The folders a request may name models from (<c>--model-root</c>, repeatable; default the work folder, where training
/// writes its checkpoints, and the bundled models): model checkpoints and tile encoders are checked as every root is
/// (<see cref="FolderRoots"/>).
/// </summary>
public sealed class ModelRoots(IEnumerable<string> roots) : FolderRoots(roots, RootKind.Models);
