namespace SlidePlugin.Engine.Datasets;

/// <summary>The kinds of data set the trainer reads.</summary>
public enum BagDatasetKind
{
    /// <summary>Ilse et al.'s MNIST-bags, built from the idx files in a folder.</summary>
    MnistBags,

    /// <summary>The 58 UCSB breast cancer images in one folder.</summary>
    Ucsb,

    /// <summary>BreakHis in the seed paper's <c>&lt;mag&gt;/&lt;train|test&gt;/&lt;0|1&gt;/*.png</c> layout.</summary>
    BreakHis,

    /// <summary>A CSV <c>slide,label[,split]</c> over whole slides.</summary>
    Slides,

    /// <summary>Class-per-folder images, <c>&lt;root&gt;/&lt;class&gt;/*.{png,jpg,tif}</c> (torchvision's ImageFolder): one bag per image.</summary>
    Folders,
}

/// <summary>
/// Where a training data set lives and how to read it: what the <c>train</c> command and the Train RPC both ask for,
/// opened in one place.
/// </summary>
public sealed record BagDatasetSource
{
    /// <summary>The names the command line and logs use, index = <see cref="BagDatasetKind"/>.</summary>
    public static IReadOnlyList<string> KindNames { get; } = ["mnist-bags", "ucsb", "breakhis", "slides", "folders"];

    /// <summary>What kind of data set.</summary>
    public required BagDatasetKind Kind { get; init; }

    /// <summary>Folder (or, for slides, the CSV file) holding it.</summary>
    public required string Path { get; init; }

    /// <summary>Patch edge in pixels (UCSB, folders and slides; default 32). BreakHis is 28 and MNIST 28 by construction.</summary>
    public int? PatchSize { get; init; }

    /// <summary>Folders and UCSB: a patch at least this fraction white is dropped (default 0.75; 1 keeps every patch).</summary>
    public double? MaxWhite { get; init; }

    /// <summary>BreakHis: one magnification folder only (40X, 100X, 200X, 400X); null for all.</summary>
    public string? Magnification { get; init; }

    /// <summary>Slides: the resolution to tile them at, µm/px (the model's). Required for slides.</summary>
    public double? Mpp { get; init; }

    /// <summary>Slides: the resolution of slides that do not record one.</summary>
    public double? SlideMpp { get; init; }

    /// <summary>
    /// Slides: maps each slide path the list names to the path to open, refusing those the caller may not read (a server
    /// passes its slide-root check; the CLI, which reads what its user can, passes none).
    /// </summary>
    public Func<string, string>? ResolveSlide { get; init; }

    /// <summary>What to do with a file that cannot be read.</summary>
    public UnreadableFilePolicy Policy { get; init; } = UnreadableFilePolicy.Fail;

    /// <summary>Slides: a tile encoder; the bags are then the slides' features (CLAM's way), kept in <see cref="FeaturesFolder"/>.</summary>
    public Encoders.TileEncoder? Encoder { get; init; }

    /// <summary>Slides with an encoder: where the features files are made and reused.</summary>
    public string? FeaturesFolder { get; init; }

    /// <summary>MNIST-bags: how the bags are drawn.</summary>
    public MnistBagsOptions MnistBags { get; init; } = new();

    /// <summary>The kind a command-line name stands for.</summary>
    /// <exception cref="ArgumentException">Not one of <see cref="KindNames"/>.</exception>
    public static BagDatasetKind ParseKind(string name)
    {
        int index = KindNames.ToList().IndexOf(name);
        return index >= 0
            ? (BagDatasetKind)index
            : throw new ArgumentException($"Unknown data set kind '{name}': one of {string.Join(", ", KindNames)}.", nameof(name));
    }

    /// <summary>Reads the data set (every image is decoded here, once).</summary>
    /// <exception cref="DatasetException">A file is missing or unreadable (under <see cref="UnreadableFilePolicy.Fail"/>); the message names it.</exception>
    /// <exception cref="ArgumentException">The request itself is incomplete (slides without <see cref="Mpp"/>) or out of range.</exception>
    public BagDataset Open()
    {
        const int DefaultPatchSize = 32;
        if (Encoder is not null && Kind != BagDatasetKind.Slides)
        {
            throw new ArgumentException($"A tile encoder applies to the slides data set only, not {KindNames[(int)Kind]}.");
        }

        return Kind switch
        {
            BagDatasetKind.MnistBags => new MnistBags(Path, MnistBags),
            BagDatasetKind.Ucsb => ImageFolderBags.Ucsb(Path, Policy, PatchSize ?? DefaultPatchSize, MaxWhite ?? 0.75),
            BagDatasetKind.BreakHis => ImageFolderBags.BreakHis(Path, Magnification, Policy),
            BagDatasetKind.Folders => ImageFolderBags.Folders(Path, Policy, PatchSize ?? DefaultPatchSize, MaxWhite ?? 0.75),
            BagDatasetKind.Slides when Encoder is not null => new FeatureBags(Path, Encoder,
                FeaturesFolder ?? throw new ArgumentException("Features of slides need a folder to be kept in."),
                new Encoders.FeatureOptions { TargetMpp = Mpp, TileSize = PatchSize }, SlideMpp, Policy, resolveSlide: ResolveSlide),
            BagDatasetKind.Slides => new SlideBags(Path,
                Mpp ?? throw new ArgumentException("A slide data set needs the model's mpp: the resolution, in µm/px, to tile the slides at."),
                PatchSize ?? DefaultPatchSize, SlideMpp, policy: Policy, resolveSlide: ResolveSlide),
            _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "Unknown data set kind."),
        };
    }
}
