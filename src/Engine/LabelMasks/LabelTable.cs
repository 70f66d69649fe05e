using System.Globalization;

namespace SlidePlugin.Engine.LabelMasks;

/// <summary>One class of a label mask: its code (the pixel value), name and display colour.</summary>
public sealed record LabelClass(byte Code, string Name, (byte R, byte G, byte B) Color);

/// <summary>A label table is unusable, or a mask holds a code it does not name; the message says which and where.</summary>
public sealed class LabelMaskException : Exception
{
    /// <summary>Creates the exception.</summary>
    public LabelMaskException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public LabelMaskException() { }

    /// <summary>Creates the exception.</summary>
    public LabelMaskException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// The classes of a label-mask data set, read from a table file in the BCSS <c>gtruth_codes.tsv</c> format: a header,
/// then <c>label &lt;TAB&gt; GT_code</c> per class, optionally a third column <c>color</c> (<c>#rrggbb</c>). Without a
/// colour column, code <c>k</c> gets the k-th colour of the 16-colour VGA palette (BCSS' colours are that palette in
/// code order: outside_roi black, tumor maroon, stroma green, lymphocytic_infiltrate olive, necrosis_or_debris navy,
/// ...), continued by xterm's 6x6x6 colour cube for codes 16 and above.
/// </summary>
public sealed class LabelTable
{
    private static readonly (byte, byte, byte)[] Vga =
    [
        (0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128), (0, 128, 128), (192, 192, 192),
        (128, 128, 128), (255, 0, 0), (0, 255, 0), (255, 255, 0), (0, 0, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
    ];

    private readonly LabelClass?[] _byCode = new LabelClass?[256];

    private LabelTable(IReadOnlyList<LabelClass> classes, string source)
    {
        Classes = classes;
        Source = source;
        foreach (LabelClass c in classes)
        {
            _byCode[c.Code] = c;
        }
    }

    /// <summary>The classes, in the table's order.</summary>
    public IReadOnlyList<LabelClass> Classes { get; }

    /// <summary>Where the table came from, for messages.</summary>
    public string Source { get; }

    /// <summary>The class with <paramref name="code"/>, or null.</summary>
    public LabelClass? this[byte code] => _byCode[code];

    /// <summary>Whether <paramref name="code"/> names a class.</summary>
    public bool Contains(byte code) => _byCode[code] is not null;

    /// <summary>A table of <paramref name="classes"/> (codes distinct); <paramref name="source"/> names it in messages.</summary>
    /// <exception cref="LabelMaskException">No classes, or a code named twice.</exception>
    public static LabelTable FromClasses(IReadOnlyList<LabelClass> classes, string source)
    {
        ArgumentNullException.ThrowIfNull(classes);
        if (classes.Count == 0 || classes.Select(c => c.Code).Distinct().Count() != classes.Count)
        {
            throw new LabelMaskException($"'{source}' needs at least one class and distinct codes.");
        }

        return new LabelTable([.. classes.OrderBy(c => c.Code)], source);
    }

    /// <summary>Reads a table file.</summary>
    /// <exception cref="LabelMaskException">Missing file, bad header, bad or duplicate code, bad colour; the message names the line.</exception>
    public static LabelTable Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new LabelMaskException($"Label table '{path}' does not exist.");
        }

        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses table text (see the class summary for the format).</summary>
    /// <exception cref="LabelMaskException">The table is not usable; the message names the line.</exception>
    public static LabelTable Parse(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        string[] lines = text.ReplaceLineEndings("\n").Split('\n');
        string[] header = lines[0].Split('\t');
        if (header.Length < 2 || !header[0].Equals("label", StringComparison.OrdinalIgnoreCase) || !header[1].Equals("GT_code", StringComparison.OrdinalIgnoreCase))
        {
            throw new LabelMaskException($"'{source}' line 1: expected the header 'label<TAB>GT_code[<TAB>color]', got '{lines[0]}'.");
        }

        bool hasColor = header.Length >= 3 && header[2].Equals("color", StringComparison.OrdinalIgnoreCase);
        var classes = new List<LabelClass>();
        var seen = new HashSet<byte>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i]))
            {
                continue;
            }

            string[] cells = lines[i].Split('\t');
            if (cells.Length < 2 || cells[0].Length == 0 || !byte.TryParse(cells[1], NumberStyles.None, CultureInfo.InvariantCulture, out byte code))
            {
                throw new LabelMaskException($"'{source}' line {i + 1}: expected 'name<TAB>code' with a code 0-255, got '{lines[i]}'.");
            }

            if (!seen.Add(code))
            {
                throw new LabelMaskException($"'{source}' line {i + 1}: code {code} is given twice.");
            }

            (byte, byte, byte) color = hasColor && cells.Length >= 3 ? ParseColor(cells[2], source, i + 1) : DefaultColor(code);
            classes.Add(new LabelClass(code, cells[0], color));
        }

        return classes.Count > 0 ? new LabelTable(classes, source) : throw new LabelMaskException($"'{source}' names no class.");
    }

    private static (byte, byte, byte) ParseColor(string text, string source, int line) =>
        text.Length == 7 && text[0] == '#' && int.TryParse(text.AsSpan(1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int rgb)
            ? ((byte)(rgb >> 16), (byte)(rgb >> 8), (byte)rgb)
            : throw new LabelMaskException($"'{source}' line {line}: colour '{text}' is not #rrggbb.");

    /// <summary>VGA's 16 colours, then colours of xterm's 6x6x6 cube (levels 0, 95, 135, 175, 215, 255), 37 cube steps apart.</summary>
    private static (byte, byte, byte) DefaultColor(byte code)
    {
        if (code < Vga.Length)
        {
            return Vga[code];
        }

        ReadOnlySpan<byte> levels = [0, 95, 135, 175, 215, 255];
        int cube = (((code - 16) * 37) + 7) % 216; // spread the first codes across the cube, away from its black and white
        return (levels[cube / 36], levels[cube / 6 % 6], levels[cube % 6]);
    }
}
