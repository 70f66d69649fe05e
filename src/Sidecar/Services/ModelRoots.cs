using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Encoders;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// The folders a request may name models from (<c>--model-root</c>, repeatable; default the work folder, where training
/// writes its checkpoints, and the bundled models): model checkpoints and tile encoders are checked as every root is
/// (<see cref="FolderRoots"/>), and <see cref="ModelFiles"/> lists the checkpoints for ListModels.
/// </summary>
public sealed class ModelRoots(IEnumerable<string> roots) : FolderRoots(roots, RootKind.Models)
{
    /// <summary>How deep under a root checkpoints are looked for (work/runs/NAME/model-best.safetensors is 2 down).</summary>
    public const int MaxDepth = 6;

    /// <summary>
    /// Every checkpoint under the roots: a <c>.safetensors</c> file with its card (<c>.json</c>) beside it, by real path, each
    /// once, in root order then path order. Weights without a card (a run's resume state, features files) are not models;
    /// files whose real path leaves the roots (a symlink out) are left out, as a request for them would be refused.
    /// </summary>
    public IReadOnlyList<string> ModelFiles()
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = MaxDepth, IgnoreInaccessible = true, MatchCasing = MatchCasing.CaseSensitive };
        var found = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string root in Roots)
        {
            foreach (string file in Directory.EnumerateFiles(root, "*.safetensors", options).Order(StringComparer.Ordinal))
            {
                if (file.EndsWith(FeatureExtractor.FileSuffix, StringComparison.Ordinal) || !File.Exists(ModelCheckpoint.CardPathFor(file)))
                {
                    continue;
                }

                string? real = RealPath(file);
                if (real is not null && IsUnderRealRoot(real) && seen.Add(real))
                {
                    found.Add(real);
                }
            }
        }

        return found;
    }
}
