using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Datasets;

/// <summary>One bag of a data set: a stable id (file name, slide path or generated name), its label and its split, if the data set fixes one.</summary>
/// <param name="Id">The bag's name (a file or slide).</param>
/// <param name="Label">Its class index.</param>
/// <param name="Split">A split fixed by the data set: train, val or test; null to be drawn.</param>
/// <param name="Group">The patient (or case) the bag comes from; bags of one group always land in the same split.</param>
public sealed record BagItem(string Id, int Label, string? Split = null, string? Group = null);

/// <summary>What to do with a file that cannot be read: stop with its path, or skip it and report it.</summary>
public enum UnreadableFilePolicy
{
    /// <summary>Throw a <see cref="DatasetException"/> naming the file.</summary>
    Fail,

    /// <summary>Leave the bag out and record it in <see cref="BagDataset.Skipped"/>.</summary>
    Skip,
}

/// <summary>A file left out of a data set, and why.</summary>
public sealed record SkippedFile(string Path, string Reason);

/// <summary>
/// A multiple-instance data set: labelled bags of patches. Subclasses list the bags up front (cheap) and decode a bag
/// when asked; decoded bags are kept as bytes within <see cref="CacheBudgetBytes"/>, so epochs after the first read
/// no files.
/// </summary>
public abstract class BagDataset
{
    private readonly Dictionary<int, PatchBag> _cache = [];
    private readonly Lock _cacheLock = new();
    private long _cachedBytes;

    /// <summary>The bags, in a stable order.</summary>
    public abstract IReadOnlyList<BagItem> Items { get; }

    /// <summary>Class names, index = label.</summary>
    public abstract IReadOnlyList<string> Classes { get; }

    /// <summary>Input channels of every patch.</summary>
    public abstract int Channels { get; }

    /// <summary>Patch edge in pixels.</summary>
    public abstract int PatchSize { get; }

    /// <summary>
    /// How pixels become model inputs; recorded in the model card so inference does the same. Histology data sets use
    /// Ilse et al.'s <see cref="PatchNormalization.Centered"/>.
    /// </summary>
    public virtual PatchNormalization Normalization => PatchNormalization.Centered;

    /// <summary>One line on where the data came from, for the model card.</summary>
    public abstract string Description { get; }

    /// <summary>What a data set's error about an unreadable file ends with: the option that leaves such files out.</summary>
    public const string SkipUnreadableHint = "to leave such files out, pass --skip-unreadable (skip_unreadable in a Train request)";

    /// <summary>Files left out under <see cref="UnreadableFilePolicy.Skip"/>.</summary>
    public IReadOnlyList<SkippedFile> Skipped => SkippedFiles;

    /// <summary>Most bytes of decoded bags kept in memory (default 1 GiB).</summary>
    public long CacheBudgetBytes { get; init; } = 1L << 30;

    /// <summary>Files skipped so far; subclasses add to it.</summary>
    protected List<SkippedFile> SkippedFiles { get; } = [];

    /// <summary>The patches of bag <paramref name="index"/> (cached).</summary>
    public PatchBag LoadPatches(int index)
    {
        lock (_cacheLock)
        {
            if (_cache.TryGetValue(index, out PatchBag? cached))
            {
                return cached;
            }
        }

        PatchBag bag = ReadPatches(index);
        Remember(index, bag);
        return bag;
    }

    /// <summary>Bag <paramref name="index"/> as the model's input [N, C, P, P] (or [N, D] for features), optionally augmented.</summary>
    public virtual Tensor Load(int index, TensorRandom? augment = null) => LoadPatches(index).ToTensor(Normalization, augment);

    /// <summary>What a bag's instances are: patches (default) or feature vectors of <see cref="FeatureSize"/>.</summary>
    public virtual Mil.MilInput Input => Mil.MilInput.Patches;

    /// <summary>Features per instance when <see cref="Input"/> is features; 0 otherwise.</summary>
    public virtual int FeatureSize => 0;

    /// <summary>The tile encoder that made the features (its card's name and the SHA-256 of its file); null for bags of patches.</summary>
    public virtual (string Name, string Sha256)? Encoder => null;

    /// <summary>Keeps <paramref name="bag"/>, read while building the data set, as bag <paramref name="index"/> when the budget allows.</summary>
    protected void Remember(int index, PatchBag bag)
    {
        ArgumentNullException.ThrowIfNull(bag);
        lock (_cacheLock)
        {
            if (_cachedBytes + bag.ByteSize <= CacheBudgetBytes && _cache.TryAdd(index, bag))
            {
                _cachedBytes += bag.ByteSize;
            }
        }
    }

    /// <summary>Reads bag <paramref name="index"/> from its source.</summary>
    protected abstract PatchBag ReadPatches(int index);
}

/// <summary>A data set that cannot be read: the message names the file or folder and the problem.</summary>
public sealed class DatasetException : Exception
{
    /// <summary>Creates the exception.</summary>
    public DatasetException(string message) : base(message) { }

    /// <summary>Creates the exception with its cause.</summary>
    public DatasetException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception.</summary>
    public DatasetException() { }
}
