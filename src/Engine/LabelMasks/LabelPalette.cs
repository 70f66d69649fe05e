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
    public static LabelMask Decode(ReadOnlySpan<byte> encoded, LabelTable table, string source, long maxPixels = long.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(table);
        var codeOf = new Dictionary<int, byte>();
        foreach (LabelClass c in table.Classes)
        {
            if (!codeOf.TryAdd((c.Color.R << 16) | (c.Color.G << 8) | c.Color.B, c.Code))
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
        for (int i = 0; i < codes.Length; i++)
        {
            int key = (p[3 * i] << 16) | (p[(3 * i) + 1] << 8) | p[(3 * i) + 2];
            if (!codeOf.TryGetValue(key, out codes[i]))
            {
                throw new LabelMaskException($"'{source}': the colour #{key:x6} at x {i % rgb.Width}, y {i / rgb.Width} is no class's in '{table.Source}'.");
            }
        }

        return new LabelMask(rgb.Width, rgb.Height, codes);
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
