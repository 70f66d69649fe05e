using System.Globalization;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;

namespace SlidePlugin.Engine.Datasets;

/// <summary>
/// Slide-level bags from a CSV <c>slide,label[,split]</c> (or, with a header, columns by name, a patient column among them; slide paths relative to the CSV's
/// folder): each bag is a slide's tissue tiles at <paramref name="Mpp"/> µm/px, <paramref name="PatchSize"/> px square,
/// as the slides' tiler cuts them. Labels are class names or integers; classes are the distinct labels, sorted
/// (numerically when all are integers).
/// </summary>
public sealed class SlideBags : BagDataset
{
    private readonly List<BagItem> _items = [];
    private readonly List<string> _paths = [];
    private readonly List<string> _classes;
    private readonly double _mpp;
    private readonly int _patchSize;
    private readonly double? _slideMppOverride;
    private readonly double _minTissueFraction;

    /// <summary>Lists the slides of <paramref name="csvPath"/>; every slide is opened (and tiled) once here, so bad ones are found first.</summary>
    /// <param name="csvPath">The CSV.</param>
    /// <param name="mpp">Resolution of the patches, µm/px (the model card's).</param>
    /// <param name="patchSize">Patch edge in pixels (the model's).</param>
    /// <param name="slideMppOverride">Resolution of slides that do not record one; without it such slides are errors.</param>
    /// <param name="minTissueFraction">Tiles with less tissue are left out.</param>
    /// <param name="policy">What to do with a slide that cannot be opened or has no tissue tile.</param>
    /// <param name="resolveSlide">Checks each listed path and gives the one to open (a server's slide-root check); null: as listed.</param>
    public SlideBags(string csvPath, double mpp, int patchSize, double? slideMppOverride = null, double minTissueFraction = 0.5,
        UnreadableFilePolicy policy = UnreadableFilePolicy.Fail, Func<string, string>? resolveSlide = null)
    {
        ArgumentNullException.ThrowIfNull(csvPath);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(mpp);
        ArgumentOutOfRangeException.ThrowIfLessThan(patchSize, 8);
        _mpp = mpp;
        _patchSize = patchSize;
        _slideMppOverride = slideMppOverride;
        _minTissueFraction = minTissueFraction;
        if (!File.Exists(csvPath))
        {
            throw new DatasetException($"Slide list '{csvPath}' does not exist.");
        }

        string folder = Path.GetDirectoryName(Path.GetFullPath(csvPath))!;
        var rows = ReadRows(csvPath, folder, resolveSlide);
        _classes = ClassesOf(rows.Select(r => r.Label));
        Description = $"slides listed in {csvPath}, tissue tiles of {patchSize}x{patchSize} px at {mpp.ToString("0.###", CultureInfo.InvariantCulture)} µm/px";
        foreach ((string path, string label, string? split, string? group) in rows)
        {
            PatchBag bag;
            try
            {
                bag = ReadSlide(path);
            }
            catch (DatasetException e) when (policy == UnreadableFilePolicy.Skip)
            {
                SkippedFiles.Add(new SkippedFile(path, e.Message));
                continue;
            }
            catch (DatasetException e)
            {
                throw new DatasetException($"{e.Message} ({SkipUnreadableHint})", e);
            }

            int index = _items.Count;
            _items.Add(new BagItem(Path.GetFileName(path), _classes.IndexOf(label), split, group));
            _paths.Add(path);
            Remember(index, bag);
        }

        if (_items.Count == 0)
        {
            throw new DatasetException($"No usable slide in '{csvPath}' ({SkippedFiles.Count} skipped).");
        }
    }

    /// <inheritdoc/>
    public override IReadOnlyList<BagItem> Items => _items;

    /// <inheritdoc/>
    public override IReadOnlyList<string> Classes => _classes;

    /// <inheritdoc/>
    public override int Channels => 3;

    /// <inheritdoc/>
    public override int PatchSize => _patchSize;

    /// <inheritdoc/>
    public override string Description { get; }

    /// <inheritdoc/>
    protected override PatchBag ReadPatches(int index) => ReadSlide(_paths[index]);

    private PatchBag ReadSlide(string path)
    {
        try
        {
            using Slide slide = Slide.Open(path);
            double slideMpp = slide.RequireMpp(_slideMppOverride);
            (TileGrid grid, _) = TileGrid.OverTissue(slide, slideMpp, new TileGridOptions { TileSize = _patchSize, TargetMpp = _mpp, MinTissueFraction = _minTissueFraction });
            if (grid.Tiles.Count == 0)
            {
                throw new DatasetException($"Slide '{path}' has no tissue tile of {_patchSize} px at {_mpp} µm/px.");
            }

            // The analysis's tile path: the same block reads, cut straight into the bag as into an analysis batch, so a
            // model sees in training exactly the pixels it is later served. One batch: the bag, in grid order.
            TileBatch bag = TileReader.ReadBatchesAsync(grid, slide, _patchSize, static _ => 0, TileReader.SmallTileBlock,
                lookaheadBlocks: Environment.ProcessorCount).ToBlockingEnumerable().Single();
            byte[] pixels = bag.Pixels;
            return new PatchBag(pixels, grid.Tiles.Count, _patchSize, 3);
        }
        catch (SlideException e)
        {
            throw new DatasetException($"Slide '{path}': {e.Message}", e);
        }
    }

    /// <summary>
    /// The rows of a slide list: full slide path, label, split (train, val, test or none) and patient (or none). Without a
    /// header the columns are slide,label[,split]; with one they are found by name: slide (or slide_id, slide_path), label,
    /// and optionally split and patient (or case_id, patient_id, as CLAM's and TCGA's lists name it).
    /// </summary>
    internal static List<(string Path, string Label, string? Split, string? Group)> ReadRows(string csvPath, string folder, Func<string, string>? resolveSlide)
    {
        var rows = new List<(string, string, string?, string?)>();
        int lineNumber = 0;
        (int Slide, int Label, int Split, int Group) columns = (0, 1, 2, -1);
        bool positional = true;
        foreach (string line in File.ReadLines(csvPath))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line) || line.StartsWith('#'))
            {
                continue;
            }

            string[] cells = [.. CsvFields.Split(line).Select(c => c.Trim())];
            if (rows.Count == 0 && positional && HeaderColumns(cells) is { } named)
            {
                columns = named.Slide >= 0 && named.Label >= 0
                    ? named
                    : throw new DatasetException($"'{csvPath}' line {lineNumber}: a header needs a slide (or slide_id) and a label column, got '{line}'.");
                positional = false;
                continue;
            }

            string Cell(int index) => index >= 0 && index < cells.Length ? cells[index] : "";
            if ((positional && cells.Length is < 2 or > 3) || Cell(columns.Slide).Length == 0 || Cell(columns.Label).Length == 0)
            {
                throw new DatasetException(positional
                    ? $"'{csvPath}' line {lineNumber}: expected slide,label[,split], got '{line}'."
                    : $"'{csvPath}' line {lineNumber}: no slide or label in '{line}'.");
            }

            string? split = Cell(columns.Split) is { Length: > 0 } given ? given.ToLowerInvariant() : null;
            if (split is not (null or "train" or "val" or "test"))
            {
                throw new DatasetException($"'{csvPath}' line {lineNumber}: split '{Cell(columns.Split)}' is not train, val or test.");
            }

            string path = Path.GetFullPath(Cell(columns.Slide), folder);
            rows.Add((resolveSlide is null ? path : resolveSlide(path), Cell(columns.Label), split, Cell(columns.Group) is { Length: > 0 } group ? group : null));
        }

        return rows.Count > 0 ? rows : throw new DatasetException($"'{csvPath}' lists no slides.");
    }

    /// <summary>The columns a header row names, or null when the row is data.</summary>
    private static (int Slide, int Label, int Split, int Group)? HeaderColumns(string[] cells)
    {
        int Find(params string[] names) => Array.FindIndex(cells, c => names.Contains(c, StringComparer.OrdinalIgnoreCase));
        (int slide, int label) = (Find("slide", "slide_id", "slide_path"), Find("label"));
        return slide < 0 && label < 0 ? null : (slide, label, Find("split"), Find("patient", "case_id", "patient_id"));
    }

    /// <summary>The distinct labels, sorted (numerically when all are integers): index = class.</summary>
    internal static List<string> ClassesOf(IEnumerable<string> labels)
    {
        var distinct = labels.Distinct(StringComparer.Ordinal).ToList();
        bool integers = distinct.All(l => int.TryParse(l, NumberStyles.Integer, CultureInfo.InvariantCulture, out _));
        return integers
            ? [.. distinct.OrderBy(l => int.Parse(l, CultureInfo.InvariantCulture))]
            : [.. distinct.Order(StringComparer.Ordinal)];
    }
}
