namespace SlidePlugin.Engine.LabelMasks;

/// <summary>
/// Folding rare classes into one (BCSS' 22 codes are usually trained as a handful): a map from code to code, chosen by
/// a pixel-fraction threshold over the data set or given explicitly, applied to masks with a 256-entry lookup table.
/// </summary>
public sealed class ClassMerge
{
    private readonly byte[] _lookup = new byte[256];

    private ClassMerge(IReadOnlyDictionary<byte, byte> moves)
    {
        for (int code = 0; code < 256; code++)
        {
            _lookup[code] = (byte)code;
        }

        foreach ((byte from, byte to) in moves)
        {
            _lookup[from] = to;
        }

        Moves = moves;
    }

    /// <summary>The codes that change, and what they become.</summary>
    public IReadOnlyDictionary<byte, byte> Moves { get; }

    /// <summary>
    /// Every class whose share of the annotated pixels in <paramref name="total"/> is below <paramref name="minFraction"/>
    /// goes into <paramref name="other"/>; the unannotated code and <paramref name="other"/> itself stay.
    /// </summary>
    /// <exception cref="LabelMaskException">The table has no class named <paramref name="other"/>.</exception>
    public static ClassMerge ByFraction(ClassCounts total, LabelTable table, double minFraction, string other = "other", byte unannotatedCode = 0)
    {
        ArgumentNullException.ThrowIfNull(total);
        ArgumentNullException.ThrowIfNull(table);
        byte target = CodeOf(table, other);
        long annotated = total.Pixels - total.Counts.GetValueOrDefault(unannotatedCode);
        var moves = new Dictionary<byte, byte>();
        foreach (LabelClass c in table.Classes)
        {
            double share = annotated == 0 ? 0 : (double)total.Counts.GetValueOrDefault(c.Code) / annotated;
            if (c.Code != unannotatedCode && c.Code != target && share < minFraction)
            {
                moves[c.Code] = target;
            }
        }

        return new ClassMerge(moves);
    }

    /// <summary>An explicit map <c>name=name,...</c> (or codes), e.g. <c>dcis=tumor,angioinvasion=other</c>.</summary>
    /// <exception cref="LabelMaskException">A malformed pair or a class the table does not name.</exception>
    public static ClassMerge FromMap(string map, LabelTable table)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(table);
        var moves = new Dictionary<byte, byte>();
        foreach (string pair in map.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string[] sides = pair.Split('=', StringSplitOptions.TrimEntries);
            if (sides.Length != 2)
            {
                throw new LabelMaskException($"Merge map entry '{pair}' is not 'from=to'.");
            }

            moves[CodeOf(table, sides[0])] = CodeOf(table, sides[1]);
        }

        return new ClassMerge(moves);
    }

    /// <summary>The mask with every code moved.</summary>
    public LabelMask Apply(LabelMask mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        var codes = new byte[mask.Codes.Length];
        for (int i = 0; i < codes.Length; i++)
        {
            codes[i] = _lookup[mask.Codes[i]];
        }

        return new LabelMask(mask.Width, mask.Height, codes);
    }

    private static byte CodeOf(LabelTable table, string nameOrCode) =>
        table.Classes.FirstOrDefault(c => c.Name == nameOrCode || c.Code.ToString(System.Globalization.CultureInfo.InvariantCulture) == nameOrCode)?.Code
        ?? throw new LabelMaskException($"'{table.Source}' names no class '{nameOrCode}'.");
}
