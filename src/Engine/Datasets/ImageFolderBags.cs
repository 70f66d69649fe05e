using System.Text.RegularExpressions;

namespace SlidePlugin.Engine.Datasets;

/// <summary>
/// Bags cut from image files, one image per bag: the UCSB breast set and BreakHis as Ilse et al. use them.
/// Every image is decoded once when the data set is built, so unreadable files are found (and failed or skipped
/// with their path) before training starts, and the bag list never changes during a run.
/// </summary>
public sealed partial class ImageFolderBags : BagDataset
{
    private readonly List<BagItem> _items = [];
    private readonly List<string> _paths = [];
    private readonly ImagePatchOptions _options;

    private ImageFolderBags(string description, IReadOnlyList<string> classes, ImagePatchOptions options)
    {
        Description = description;
        Classes = classes;
        _options = options;
    }

    /// <inheritdoc/>
    public override IReadOnlyList<BagItem> Items => _items;

    /// <inheritdoc/>
    public override IReadOnlyList<string> Classes { get; }

    /// <inheritdoc/>
    public override int Channels => _options.Channels;

    /// <inheritdoc/>
    public override int PatchSize => _options.PatchSize;

    /// <inheritdoc/>
    public override string Description { get; }

    /// <summary>The image file of bag <paramref name="index"/>.</summary>
    public string PathOf(int index) => _paths[index];

    /// <summary>
    /// The UCSB breast-cancer images (Ilse et al. 2018): every <c>*.tif</c> under <paramref name="folder"/>, label 1 when
    /// the name says <c>malignant</c>, 0 when it says <c>benign</c>; 32x32 patches, those ≥75% white dropped.
    /// </summary>
    public static ImageFolderBags Ucsb(string folder, UnreadableFilePolicy policy = UnreadableFilePolicy.Fail, int patchSize = 32, double maxWhite = 0.75)
    {
        RequireFolder(folder);
        var files = Directory.EnumerateFiles(folder, "*.tif*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        var labelled = new List<(string Path, int Label, string? Split)>();
        foreach (string file in files)
        {
            string name = Path.GetFileName(file);
            int label = name.Contains("malignant", StringComparison.OrdinalIgnoreCase) ? 1
                : name.Contains("benign", StringComparison.OrdinalIgnoreCase) ? 0
                : throw new DatasetException($"UCSB image '{file}': the name says neither 'benign' nor 'malignant'.");
            labelled.Add((file, label, null));
        }

        var options = new ImagePatchOptions { PatchSize = patchSize, MaxWhiteFraction = CheckedMaxWhite(maxWhite) };
        return Build($"UCSB breast cancer images ({folder}), {patchSize}x{patchSize} RGB patches, {WhiteDropped(maxWhite)}", ["benign", "malignant"], options, labelled, policy);
    }

    /// <summary>Image files a class folder contributes (the common formats libvips decodes), by extension, case-insensitive.</summary>
    public static IReadOnlyList<string> FolderImageExtensions { get; } = [".png", ".jpg", ".jpeg", ".tif", ".tiff"];

    /// <summary>
    /// A class-per-folder data set (torchvision's ImageFolder; Kather's NCT-CRC-HE): <c>&lt;root&gt;/&lt;class&gt;/**/*.{png,jpg,tif}</c>.
    /// Classes are the sub-folders' names in ordinal order; each image is a bag of its <paramref name="patchSize"/> RGB patches,
    /// those at least <paramref name="maxWhite"/> white dropped (1 keeps all). A folder <c>train</c>/<c>val</c>/<c>test</c>
    /// level above the classes (<c>&lt;root&gt;/train/&lt;class&gt;/...</c>) fixes the split, as in many published tile sets.
    /// </summary>
    /// <exception cref="DatasetException">No class folders, fewer than two classes, or a class without images; the message names what was found.</exception>
    public static ImageFolderBags Folders(string root, UnreadableFilePolicy policy = UnreadableFilePolicy.Fail, int patchSize = 32, double maxWhite = 0.75)
    {
        RequireFolder(root);
        maxWhite = CheckedMaxWhite(maxWhite);
        string[] splits = ["train", "val", "test"];
        List<(string Folder, string? Split)> splitFolders = [.. splits.Select(s => (Path.Combine(root, s), (string?)s)).Where(f => Directory.Exists(f.Item1))];
        if (splitFolders.Count == 0)
        {
            splitFolders.Add((root, null));
        }

        var perSplit = splitFolders.Select(f => (f.Split, Classes: Directory.EnumerateDirectories(f.Folder).Select(d => Path.GetFileName(d)!)
            .Where(n => !n.StartsWith('.')).Order(StringComparer.Ordinal).ToList())).ToList();
        List<string> classes = [.. perSplit.SelectMany(p => p.Classes).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
        if (classes.Count < 2)
        {
            throw new DatasetException($"'{root}' has {(classes.Count == 0 ? "no class folders" : $"one class folder ({classes[0]})")}: a folders data set is <root>/<class>/*.png|jpg|tif with at least two classes.");
        }

        var labelled = new List<(string Path, int Label, string? Split)>();
        foreach ((string folder, string? split) in splitFolders)
        {
            foreach (string name in classes)
            {
                string classFolder = Path.Combine(folder, name);
                if (!Directory.Exists(classFolder))
                {
                    continue;
                }

                foreach (string file in Directory.EnumerateFiles(classFolder, "*", SearchOption.AllDirectories)
                             .Where(f => FolderImageExtensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase)).Order(StringComparer.Ordinal))
                {
                    labelled.Add((file, classes.IndexOf(name), split));
                }
            }
        }

        if (classes.Where((_, c) => !labelled.Any(l => l.Label == c)).ToList() is { Count: > 0 } empty)
        {
            throw new DatasetException($"Class folder{(empty.Count == 1 ? "" : "s")} {string.Join(", ", empty.Select(e => $"'{e}'"))} under '{root}' hold{(empty.Count == 1 ? "s" : "")} no {string.Join("/", FolderImageExtensions)} image.");
        }

        var options = new ImagePatchOptions { PatchSize = patchSize, MaxWhiteFraction = maxWhite };
        string counts = string.Join(", ", classes.Select((c, i) => $"{c} {labelled.Count(l => l.Label == i)}"));
        return Build($"image folders under {root} ({counts} images), {patchSize}x{patchSize} RGB patches, {WhiteDropped(maxWhite)}",
            classes, options, labelled, policy);
    }

    /// <summary>
    /// BreakHis in the seed paper's layout <c>&lt;magnification&gt;/&lt;train|test&gt;/&lt;0|1&gt;/*.png</c> under
    /// <paramref name="folder"/> (only <paramref name="magnification"/> such as <c>40X</c> when given): each image
    /// centre-cropped to 700x448 and cut into 28x28 RGB patches, a bag of 400.
    /// </summary>
    public static ImageFolderBags BreakHis(string folder, string? magnification = null, UnreadableFilePolicy policy = UnreadableFilePolicy.Fail)
    {
        RequireFolder(folder);
        var labelled = new List<(string Path, int Label, string? Split)>();
        foreach (string magnificationFolder in Directory.EnumerateDirectories(folder).Order(StringComparer.Ordinal))
        {
            if (magnification is not null && !string.Equals(Path.GetFileName(magnificationFolder), magnification, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            foreach (string split in new[] { "train", "test" })
            {
                foreach (int label in new[] { 0, 1 })
                {
                    string classFolder = Path.Combine(magnificationFolder, split, label.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    if (!Directory.Exists(classFolder))
                    {
                        continue;
                    }

                    foreach (string file in Directory.EnumerateFiles(classFolder, "*.png").Order(StringComparer.Ordinal))
                    {
                        labelled.Add((file, label, split));
                    }
                }
            }
        }

        if (labelled.Count == 0)
        {
            throw new DatasetException($"No BreakHis images under '{folder}': expected <magnification>/<train|test>/<0|1>/*.png (convert with 'slideplugin dataset breakhis-layout').");
        }

        var options = new ImagePatchOptions { PatchSize = 28, CenterCrop = (700, 448) };
        return Build($"BreakHis ({folder}{(magnification is null ? "" : ", " + magnification)}), centre 700x448 cut into 28x28 RGB patches", ["benign", "malignant"], options, labelled, policy);
    }

    /// <summary>The label a BreakHis file name gives: <c>SOB_B_...</c> benign (0), <c>SOB_M_...</c> malignant (1); null for other names.</summary>
    public static int? BreakHisLabelOf(string fileName)
    {
        Match match = BreakHisName().Match(fileName);
        return match.Success ? (match.Groups["class"].Value == "M" ? 1 : 0) : null;
    }

    /// <summary>Patient and magnification of a BreakHis file name (<c>SOB_B_A-14-22549AB-40-001.png</c> → 14-22549AB, 40X).</summary>
    public static (string Patient, string Magnification)? BreakHisPartsOf(string fileName)
    {
        Match match = BreakHisName().Match(fileName);
        return match.Success ? (match.Groups["patient"].Value, match.Groups["magnification"].Value + "X") : null;
    }

    /// <inheritdoc/>
    protected override PatchBag ReadPatches(int index) => ImagePatches.FromFile(_paths[index], _options);

    private static ImageFolderBags Build(string description, IReadOnlyList<string> classes, ImagePatchOptions options,
        List<(string Path, int Label, string? Split)> files, UnreadableFilePolicy policy)
    {
        var dataset = new ImageFolderBags(description, classes, options);
        // Decoded in parallel, a batch at a time: bags beyond the cache budget are dropped after this check, so a large
        // data set is never all in memory at once.
        const int Batch = 64;
        for (int start = 0; start < files.Count; start += Batch)
        {
            int count = Math.Min(Batch, files.Count - start);
            var bags = new PatchBag?[count];
            var errors = new DatasetException?[count];
            Parallel.For(0, count, i =>
            {
                try
                {
                    bags[i] = ImagePatches.FromFile(files[start + i].Path, options);
                }
                catch (DatasetException e)
                {
                    errors[i] = e;
                }
            });

            for (int i = 0; i < count; i++)
            {
                (string path, int label, string? split) = files[start + i];
                string? problem = errors[i]?.Message ?? (bags[i]!.Count == 0 ? $"Image '{path}' has no patch left after dropping white ones ({WhiteDropped(options.MaxWhiteFraction)}; --max-white sets the fraction)." : null);
                if (problem is not null)
                {
                    if (policy == UnreadableFilePolicy.Fail)
                    {
                        string hint = $" ({BagDataset.SkipUnreadableHint})";
                        throw errors[i] is { } cause ? new DatasetException(problem + hint, cause) : new DatasetException(problem + hint);
                    }

                    dataset.SkippedFiles.Add(new SkippedFile(path, problem));
                    continue;
                }

                int index = dataset._items.Count;
                dataset._items.Add(new BagItem(Path.GetFileName(path), label, split));
                dataset._paths.Add(path);
                dataset.Remember(index, bags[i]!);
            }
        }

        if (dataset._items.Count == 0)
        {
            throw new DatasetException($"No readable images in the data set ({dataset.SkippedFiles.Count} skipped).");
        }

        return dataset;
    }

    private static double CheckedMaxWhite(double maxWhite) => maxWhite is > 0 and <= 1
        ? maxWhite
        : throw new ArgumentOutOfRangeException(nameof(maxWhite), maxWhite, "The white fraction that drops a patch is in (0, 1]; 1 keeps every patch.");

    private static string WhiteDropped(double maxWhite) =>
        maxWhite >= 1 ? "no patch dropped" : $"patches ≥{(maxWhite * 100).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture)}% white dropped";

    private static void RequireFolder(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder))
        {
            throw new DatasetException($"Data folder '{folder}' does not exist.");
        }
    }

    [GeneratedRegex(@"^SOB_(?<class>[BM])_[A-Z]+-(?<patient>\d+-[0-9A-Z]+)-(?<magnification>\d+)-\d+\.png$", RegexOptions.IgnoreCase)]
    private static partial Regex BreakHisName();
}
