using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Segmentation;

/// <summary>
/// A synthetic weakly supervised segmentation benchmark from MNIST: canvases (84x84 by default) with 1–3 digits pasted
/// at random positions (a later digit covers an earlier one where they overlap). Tags are the classes present
/// (1 + digit); the mask marks each digit's pixels (value ≥ 128) with its class, the rest background (0). Seeded.
/// Canvases are grey (one band), values / 255 as the network's input: black stays 0, the value of the convolutions'
/// zero padding (with mean subtraction the border would look unlike the rest of the background, and the background's
/// maximum, the only place the MIL loss trains it, would stay on the border).
/// </summary>
public static class MnistCanvases
{
    /// <summary>Classes: background and the ten digits.</summary>
    public const int Classes = 11;

    /// <summary>Makes <paramref name="count"/> canvases from <paramref name="digits"/>.</summary>
    public static IReadOnlyList<TaggedImage> Generate(MnistIdx digits, int count, ulong seed, int size = 84, int maxDigits = 3)
    {
        ArgumentNullException.ThrowIfNull(digits);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, digits.Rows);
        var random = new TensorRandom(seed);
        var canvases = new TaggedImage[count];
        int side = digits.Rows, area = side * side;
        for (int n = 0; n < count; n++)
        {
            var pixels = new byte[size * size];
            var mask = new byte[size * size];
            int pieces = 1 + random.NextInt(maxDigits);
            for (int d = 0; d < pieces; d++)
            {
                int index = random.NextInt(digits.Count), left = random.NextInt(size - side + 1), top = random.NextInt(size - side + 1);
                byte label = (byte)(1 + digits.Labels[index]);
                ReadOnlySpan<byte> digit = digits.Images.AsSpan(index * area, area);
                for (int y = 0; y < side; y++)
                {
                    for (int x = 0; x < side; x++)
                    {
                        byte value = digit[(y * side) + x];
                        int at = ((top + y) * size) + left + x;
                        if (value >= 128)
                        {
                            pixels[at] = value;
                            mask[at] = label;
                        }
                        else if (mask[at] == 0)
                        {
                            pixels[at] = Math.Max(pixels[at], value);
                        }
                    }
                }
            }

            int[] tags = [.. mask.Where(m => m != 0).Distinct().Select(m => (int)m).Order()];
            canvases[n] = new TaggedImage($"canvas-{n}", new Raster(size, size, 1, pixels), tags, mask);
        }

        return canvases;
    }
}
