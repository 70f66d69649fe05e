using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.LabelMasks;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Tests;

/// <summary>
/// A weakly supervised segmentation data set whose truth is known by construction: pale pink images (background,
/// code 0) with a dark purple disc (tumor, code 1) and/or a red square (stroma, code 2) at seeded positions, their
/// label masks, and the three-class table that names them.
/// </summary>
internal static class SyntheticShapes
{
    /// <summary>The class table, BCSS format with a colour column.</summary>
    public const string TableText = "label\tGT_code\tcolor\nbackground\t0\t#000000\ntumor\t1\t#800000\nstroma\t2\t#008000\n";

    /// <summary>The class table.</summary>
    public static LabelTable Table() => LabelTable.Parse(TableText, "shapes table");

    /// <summary>One image and its mask.</summary>
    public static (Raster Image, LabelMask Mask) Draw(int size, bool disc, bool square, TensorRandom random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var pixels = new byte[size * size * 3];
        var codes = new byte[size * size];
        int cx = 10 + random.NextInt(size - 20), cy = 10 + random.NextInt(size - 20), sx = random.NextInt(size - 14), sy = random.NextInt(size - 14);
        for (int y = 0; y < size; y++)
        {
            for (int x = 0; x < size; x++)
            {
                int i = (y * size) + x;
                (byte r, byte g, byte b, byte code) = (235, 200, 215, (byte)0);
                if (square && x >= sx && x < sx + 14 && y >= sy && y < sy + 14)
                {
                    (r, g, b, code) = (200, 40, 60, 2);
                }

                if (disc && (((x - cx) * (x - cx)) + ((y - cy) * (y - cy))) <= 64)
                {
                    (r, g, b, code) = (70, 30, 120, 1);
                }

                int noise = random.NextInt(21) - 10;
                pixels[i * 3] = (byte)Math.Clamp(r + noise, 0, 255);
                pixels[(i * 3) + 1] = (byte)Math.Clamp(g + noise, 0, 255);
                pixels[(i * 3) + 2] = (byte)Math.Clamp(b + noise, 0, 255);
                codes[i] = code;
            }
        }

        return (new Raster(size, size, 3, pixels), new LabelMask(size, size, codes));
    }

    /// <summary>
    /// Writes <paramref name="count"/> images <c>img000.png</c>... to <c>images/</c> and their masks to <c>masks/</c> under
    /// <paramref name="folder"/>, cycling through disc only, square only, both; returns the two folders.
    /// </summary>
    public static (string Images, string Masks) Write(string folder, int count, int size, ulong seed)
    {
        string images = Directory.CreateDirectory(Path.Combine(folder, "images")).FullName;
        string masks = Directory.CreateDirectory(Path.Combine(folder, "masks")).FullName;
        var random = new TensorRandom(seed);
        for (int n = 0; n < count; n++)
        {
            (Raster image, LabelMask mask) = Draw(size, disc: n % 3 != 1, square: n % 3 != 0, random);
            File.WriteAllBytes(Path.Combine(images, $"img{n:000}.png"), ImageCodec.EncodePng(image));
            File.WriteAllBytes(Path.Combine(masks, $"img{n:000}.png"), ImageCodec.EncodePng(new Raster(size, size, 1, mask.Codes)));
        }

        return (images, masks);
    }
}
