using System.Globalization;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Interop;

namespace SlidePlugin.Engine.LabelMasks;

/// <summary>
/// Label masks as colour: an indexed PNG whose palette is the table's colours and whose pixel values stay the class
/// codes (viewers show colours, tools still read codes), and back from any colour rendering of a mask to codes.
/// </summary>
public static class LabelPalette
{
    /// <summary>The mask as an indexed PNG: value = code, palette entry k = the colour of code k (black where the table names none).</summary>
    /// <exception cref="LabelMaskException">A code the table does not name.</exception>
    public static unsafe byte[] EncodeIndexedPng(LabelMask mask, LabelTable table)
    {
        ArgumentNullException.ThrowIfNull(mask);
        ArgumentNullException.ThrowIfNull(table);
        mask.CheckCodes(table, "mask");
        int entries = table.Classes.Max(c => c.Code) + 1;
        var colormap = new byte[entries * 3];
        foreach (LabelClass c in table.Classes)
        {
            (colormap[c.Code * 3], colormap[(c.Code * 3) + 1], colormap[(c.Code * 3) + 2]) = c.Color;
        }

        fixed (byte* pixels = mask.Codes)
        fixed (byte* map = colormap)
        {
            PngNative.PngImage image = Describe(mask, entries);
            nuint size = 0;
            if (PngNative.WriteToMemory(&image, null, ref size, 0, pixels, mask.Width, map) == 0)
            {
                throw new ImageCodecException($"libpng cannot write the mask: {image.Message}");
            }

            var png = new byte[size];
            image = Describe(mask, entries);
            fixed (byte* output = png)
            {
                if (PngNative.WriteToMemory(&image, output, ref size, 0, pixels, mask.Width, map) == 0)
                {
                    throw new ImageCodecException($"libpng cannot write the mask: {image.Message}");
                }
            }

            return png.AsSpan(0, (int)size).ToArray();
        }
    }

    /// <summary>
    /// Codes from a coloured mask (an indexed PNG written above, or any RGB rendering in the table's colours), each
    /// pixel's colour looked up in the table.
    /// </summary>
    /// <exception cref="LabelMaskException">A colour that is no class's (with where it first occurs), or colours shared by two classes.</exception>
    public static LabelMask Decode(ReadOnlySpan<byte> encoded, LabelTable table, string source, long maxPixels = long.MaxValue) =>
        DecodeNearest(encoded, table, source, 0, maxPixels).Mask;

    /// <summary>
    /// Codes from a coloured mask whose colours may be off the table's: each colour goes to the class whose colour is
    /// nearest (Euclidean distance in RGB, 0 to 441; on a tie the class listed first) when that distance is at most
    /// <paramref name="tolerance"/>. Renderings blend colours at class edges (anti-aliasing, resampling): a 5-class
    /// PanNuke mask holds 39 colours. Tolerance 0 takes the table's colours only.
    /// </summary>
    /// <exception cref="LabelMaskException">A colour farther than <paramref name="tolerance"/> from every class's (where it first occurs, the nearest class and the distance), or colours shared by two classes.</exception>
    public static PaletteDecoding DecodeNearest(ReadOnlySpan<byte> encoded, LabelTable table, string source, double tolerance, long maxPixels = long.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (!(tolerance >= 0))
        {
            throw new ArgumentOutOfRangeException(nameof(tolerance), tolerance, "The colour tolerance is a distance in RGB, 0 or more.");
        }

        // Every colour met, with its class and its distance to that class's colour (exact colours at distance 0).
        var nearest = new Dictionary<int, (byte Code, double Distance)>();
        foreach (LabelClass c in table.Classes)
        {
            if (!nearest.TryAdd(Key(c.Color), (c.Code, 0)))
            {
                throw new LabelMaskException($"'{table.Source}': {c.Name} has the colour of another class; colours must tell the classes apart.");
            }
        }

        Raster rgb = ImageCodec.Decode(encoded, maxPixels);
        if (rgb.Bands == 4)
        {
            rgb = rgb.Flatten((0, 0, 0));
        }
        else if (rgb.Bands != 3)
        {
            throw new LabelMaskException($"'{source}' has {rgb.Bands} bands; a coloured mask is RGB.");
        }

        var codes = new byte[rgb.Width * rgb.Height];
        byte[] p = rgb.Pixels;
        long snapped = 0;
        double largest = 0;
        for (int i = 0; i < codes.Length; i++)
        {
            int key = (p[3 * i] << 16) | (p[(3 * i) + 1] << 8) | p[(3 * i) + 2];
            if (!nearest.TryGetValue(key, out (byte Code, double Distance) match))
            {
                (LabelClass closest, double distance) = Closest(table, key);
                if (distance > tolerance)
                {
                    throw new LabelMaskException(tolerance == 0
                        ? string.Create(CultureInfo.InvariantCulture, $"'{source}': the colour #{key:x6} at x {i % rgb.Width}, y {i / rgb.Width} is no class's in '{table.Source}' (nearest: {closest.Name}, RGB distance {distance:0.#}). If it is an edge blended between classes (anti-aliasing), map each colour to the nearest class colour within a distance: --tolerance DISTANCE (gRPC: tolerance).")
                        : string.Create(CultureInfo.InvariantCulture, $"'{source}': the colour #{key:x6} at x {i % rgb.Width}, y {i / rgb.Width} is {distance:0.#} from the nearest class colour ({closest.Name}) in '{table.Source}', beyond the tolerance {tolerance:0.#} (CLI: --tolerance; gRPC: tolerance). A colour that far is likely no blend of class colours: check the table's colours."));
                }

                match = (closest.Code, distance);
                nearest[key] = match;
            }

            codes[i] = match.Code;
            if (match.Distance > 0)
            {
                snapped++;
                largest = Math.Max(largest, match.Distance);
            }
        }

        return new PaletteDecoding(new LabelMask(rgb.Width, rgb.Height, codes), snapped, largest);
    }

    private static int Key((byte R, byte G, byte B) colour) => (colour.R << 16) | (colour.G << 8) | colour.B;

    /// <summary>The class whose colour is nearest to <paramref name="key"/> (the first on a tie), and the distance.</summary>
    private static (LabelClass Class, double Distance) Closest(LabelTable table, int key)
    {
        int r = (key >> 16) & 0xff, g = (key >> 8) & 0xff, b = key & 0xff;
        LabelClass best = table.Classes[0];
        double bestSquared = double.MaxValue;
        foreach (LabelClass c in table.Classes)
        {
            double squared = ((r - c.Color.R) * (r - c.Color.R)) + ((g - c.Color.G) * (g - c.Color.G)) + ((b - c.Color.B) * (b - c.Color.B));
            if (squared < bestSquared)
            {
                (best, bestSquared) = (c, squared);
            }
        }

        return (best, Math.Sqrt(bestSquared));
    }

    private static PngNative.PngImage Describe(LabelMask mask, int entries) => new()
    {
        Version = PngNative.ImageVersion,
        Width = (uint)mask.Width,
        Height = (uint)mask.Height,
        Format = PngNative.FormatRgbColormap,
        ColormapEntries = (uint)entries,
    };
}

/// <summary>A coloured mask turned into codes: the mask, how many pixels were off the table's colours and mapped to the nearest, and the largest such distance.</summary>
public sealed record PaletteDecoding(LabelMask Mask, long SnappedPixels, double LargestDistance);
