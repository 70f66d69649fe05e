using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Datasets;

/// <summary>What <see cref="BreakHisLayout.Convert"/> did.</summary>
public sealed record BreakHisConversion(int Copied, int AlreadyThere, int Ignored, IReadOnlyDictionary<string, int> PerFolder);

/// <summary>
/// Converts BreakHis into the layout the seed paper's code trains on, <c>&lt;magnification&gt;/&lt;train|test&gt;/&lt;0|1&gt;/*.png</c>:
/// from the fold layout (<c>fold1/&lt;train|test&gt;/&lt;magnification&gt;/.../*.png</c>, one fold chosen), or from folders of
/// <c>SOB_&lt;B|M&gt;_...png</c> files without a split, which are then split by patient (no patient in both sets).
/// Class and magnification come from the file name. Files are copied atomically; a file already there is kept, so a
/// stopped conversion can simply be run again.
/// </summary>
public static class BreakHisLayout
{
    /// <summary>Converts <paramref name="source"/> into <paramref name="destination"/>.</summary>
    /// <param name="source">The BreakHis folder (fold layout or plain folders).</param>
    /// <param name="destination">The folder to fill.</param>
    /// <param name="fold">The fold to take from a fold layout (<c>fold1</c> ... <c>fold5</c>).</param>
    /// <param name="testFraction">Without folds: the fraction of patients put in <c>test</c>.</param>
    /// <param name="seed">Without folds: seed of the patient split.</param>
    public static BreakHisConversion Convert(string source, string destination, string fold = "fold1", double testFraction = 0.3, ulong seed = 1)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        if (!Directory.Exists(source))
        {
            throw new DatasetException($"BreakHis folder '{source}' does not exist.");
        }

        if (testFraction is < 0 or > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "The test fraction is between 0 and 1.");
        }

        bool hasFolds = Directory.EnumerateDirectories(source, "fold*").Any();
        string root = hasFolds ? Path.Combine(source, fold) : source;
        if (hasFolds && !Directory.Exists(root))
        {
            throw new DatasetException($"BreakHis folder '{source}' has folds but no '{fold}'.");
        }

        var files = Directory.EnumerateFiles(root, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        var placed = new List<(string File, string Magnification, string Split, int Label)>();
        int ignored = 0;
        Dictionary<string, string>? patientSplit = hasFolds ? null : SplitPatients(files, testFraction, seed);
        foreach (string file in files)
        {
            string name = Path.GetFileName(file);
            if (ImageFolderBags.BreakHisLabelOf(name) is not { } label || ImageFolderBags.BreakHisPartsOf(name) is not { } parts)
            {
                ignored++;
                continue;
            }

            string split = hasFolds ? SplitFromPath(Path.GetRelativePath(root, file)) ?? "" : patientSplit![parts.Patient];
            if (split.Length == 0)
            {
                ignored++;
                continue;
            }

            placed.Add((file, parts.Magnification, split, label));
        }

        int copied = 0, present = 0;
        var perFolder = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach ((string file, string magnification, string split, int label) in placed)
        {
            string folder = Path.Combine(magnification, split, label.ToString(System.Globalization.CultureInfo.InvariantCulture));
            string target = Path.Combine(destination, folder, Path.GetFileName(file));
            perFolder[folder] = perFolder.GetValueOrDefault(folder) + 1;
            if (File.Exists(target) && new FileInfo(target).Length == new FileInfo(file).Length)
            {
                present++;
                continue;
            }

            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            AtomicFile.Write(target, ".png", temporary => File.Copy(file, temporary, overwrite: true));
            copied++;
        }

        return new BreakHisConversion(copied, present, ignored, perFolder);
    }

    /// <summary>"train" or "test" from the first path segment that names one.</summary>
    private static string? SplitFromPath(string relative) =>
        relative.Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar)
            .Select(segment => segment.ToLowerInvariant())
            .FirstOrDefault(segment => segment is "train" or "test");

    /// <summary>Patients shuffled with the seed; the first round(fraction · count) go to test.</summary>
    private static Dictionary<string, string> SplitPatients(List<string> files, double testFraction, ulong seed)
    {
        var patients = files.Select(f => ImageFolderBags.BreakHisPartsOf(Path.GetFileName(f))?.Patient)
            .OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();
        new TensorRandom(seed).Shuffle(patients);
        int test = (int)Math.Round(testFraction * patients.Count);
        return patients.Select((patient, i) => (patient, i)).ToDictionary(p => p.patient, p => p.i < test ? "test" : "train", StringComparer.Ordinal);
    }
}
