using System.Globalization;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Encoders;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Datasets;

/// <summary>
/// Slide-level bags of tile features, CLAM's way: the slides of a CSV <c>slide,label[,split]</c> (as <see cref="SlideBags"/>)
/// through a tile encoder once, each into <c>&lt;stem&gt;.features.safetensors</c> in a features folder
/// (reused when the encoder and tiling match, resumed when interrupted); a bag is a slide's features [N, D].
/// </summary>
public sealed class FeatureBags : BagDataset
{
    private readonly List<BagItem> _items = [];
    private readonly List<string> _files = [];
    private readonly List<string> _classes;
    private readonly Dictionary<int, float[]> _cache = [];
    private readonly Lock _cacheLock = new();
    private readonly int _dim;
    private long _cachedBytes;

    /// <summary>Extracts (or reuses) the features of every slide listed in <paramref name="csvPath"/>.</summary>
    /// <param name="csvPath">The slide list.</param>
    /// <param name="encoder">The tile encoder.</param>
    /// <param name="featuresFolder">Where the features files are kept.</param>
    /// <param name="options">The tiling (default: the encoder card's mpp and input size, tissue at least half of a tile).</param>
    /// <param name="slideMppOverride">Resolution of slides that do not record one.</param>
    /// <param name="policy">What to do with a slide that cannot be read or has no tissue tile.</param>
    /// <param name="progress">Hears each slide's name as its features are made or found.</param>
    /// <param name="resolveSlide">Checks each listed path and gives the one to open (a server's slide-root check); null: as listed.</param>
    public FeatureBags(string csvPath, TileEncoder encoder, string featuresFolder, FeatureOptions? options = null, double? slideMppOverride = null,
        UnreadableFilePolicy policy = UnreadableFilePolicy.Fail, Action<string>? progress = null, Func<string, string>? resolveSlide = null)
    {
        ArgumentNullException.ThrowIfNull(csvPath);
        ArgumentNullException.ThrowIfNull(encoder);
        if (!File.Exists(csvPath))
        {
            throw new DatasetException($"Slide list '{csvPath}' does not exist.");
        }

        options ??= new FeatureOptions();
        _dim = encoder.Card.OutputDim;
        var rows = SlideBags.ReadRows(csvPath, Path.GetDirectoryName(Path.GetFullPath(csvPath))!, resolveSlide);
        _classes = SlideBags.ClassesOf(rows.Select(r => r.Label));
        // Features files are named by the slide's stem: two different slides of one name would overwrite each other's.
        if (rows.Select(r => r.Path).Distinct(StringComparer.Ordinal).GroupBy(p => Path.GetFileNameWithoutExtension(p), StringComparer.Ordinal)
                .FirstOrDefault(g => g.Count() > 1) is { } clash)
        {
            throw new DatasetException($"'{csvPath}' lists different slides named '{clash.Key}' ({string.Join(", ", clash)}): their features files would be one; rename one of them.");
        }

        foreach ((string path, string label, string? split, string? group) in rows)
        {
            string file;
            try
            {
                progress?.Invoke(Path.GetFileName(path));
                using Slide slide = Slide.Open(path);
                (file, _) = FeatureExtractor.ExtractAsync(slide, slide.RequireMpp(slideMppOverride), encoder, options, featuresFolder).GetAwaiter().GetResult();
                if (SafeTensors.ReadMetadata(file)["tile_count"] == "0")
                {
                    throw new DatasetException($"Slide '{path}' has no tissue tile of {options.TileSize ?? encoder.Card.InputSize} px at {options.TargetMpp ?? encoder.Card.Mpp} µm/px.");
                }
            }
            catch (Exception e) when (policy == UnreadableFilePolicy.Skip && e is SlideException or DatasetException)
            {
                SkippedFiles.Add(new SkippedFile(path, e.Message));
                continue;
            }
            catch (SlideException e)
            {
                throw new DatasetException($"Slide '{path}': {e.Message} ({SkipUnreadableHint})", e);
            }
            catch (DatasetException e)
            {
                throw new DatasetException($"{e.Message} ({SkipUnreadableHint})", e);
            }

            _items.Add(new BagItem(Path.GetFileName(path), _classes.IndexOf(label), split, group));
            _files.Add(file);
        }

        if (_items.Count == 0)
        {
            throw new DatasetException($"No usable slide in '{csvPath}' ({SkippedFiles.Count} skipped).");
        }

        Description = string.Create(CultureInfo.InvariantCulture,
            $"slides listed in {csvPath}, {encoder.Card.Name} features ({_dim}-d, encoder sha256 {encoder.Sha256[..12]}) of tissue tiles at {options.TargetMpp ?? encoder.Card.Mpp:0.###} µm/px");
        PatchSize = encoder.Card.InputSize;
        Encoder = (encoder.Card.Name, encoder.Sha256);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<BagItem> Items => _items;

    /// <inheritdoc/>
    public override IReadOnlyList<string> Classes => _classes;

    /// <inheritdoc/>
    public override int Channels => 3;

    /// <summary>The encoder's input size (the bags hold features, not patches).</summary>
    public override int PatchSize { get; }

    /// <inheritdoc/>
    public override Mil.MilInput Input => Mil.MilInput.Features;

    /// <inheritdoc/>
    public override int FeatureSize => _dim;

    /// <inheritdoc/>
    public override (string Name, string Sha256)? Encoder { get; }

    /// <inheritdoc/>
    public override string Description { get; }

    /// <summary>The features file of bag <paramref name="index"/>.</summary>
    public string FileOf(int index) => _files[index];

    /// <summary>Bag <paramref name="index"/>'s features [N, D]; features are not augmented.</summary>
    public override Tensor Load(int index, TensorRandom? augment = null)
    {
        float[] features;
        lock (_cacheLock)
        {
            _cache.TryGetValue(index, out features!);
        }

        if (features is null)
        {
            features = SafeTensors.Load(_files[index]).ToTensor("features").ToArray();
            lock (_cacheLock)
            {
                if (_cachedBytes + (features.Length * 4L) <= CacheBudgetBytes && _cache.TryAdd(index, features))
                {
                    _cachedBytes += features.Length * 4L;
                }
            }
        }

        return Tensor.FromData(features, features.Length / _dim, _dim);
    }

    /// <summary>Feature bags hold no patches.</summary>
    protected override PatchBag ReadPatches(int index) =>
        throw new NotSupportedException("A bag of features has no patches; use Load.");
}
