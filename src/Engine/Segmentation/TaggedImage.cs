using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Segmentation;

/// <summary>
/// One image of a weakly supervised segmentation data set: its pixels, its image-level tags (the foreground class
/// indices 1..K−1 it contains; background, index 0, is implicit) and, when known, its ground-truth mask (one class
/// index per pixel, row-major, for evaluation and the fully supervised oracle only).
/// </summary>
public sealed record TaggedImage(string Id, Raster Image, IReadOnlyList<int> Tags, byte[]? Mask = null)
{
    /// <summary>The mask, or an error naming the image when it has none.</summary>
    public byte[] RequireMask() => Mask ?? throw new InvalidOperationException($"Image '{Id}' has no mask.");
}

/// <summary>How an image becomes the FCN's input.</summary>
public static class FcnInput
{
    /// <summary>
    /// The image as [1, C, H', W'] with H', W' the size rounded up to a multiple of <see cref="FcnSpec.Stride"/>; the added
    /// rows and columns are 0 after normalisation (what the convolutions pad with). Grey images feed an RGB network by
    /// repeating the grey band; alpha is dropped.
    /// </summary>
    public static Tensor ToTensor(Raster image, int channels, PatchNormalization normalization)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(normalization);
        int colourBands = image.Bands is 2 or 4 ? image.Bands - 1 : image.Bands;
        if (colourBands != channels && !(colourBands == 1 && channels == 3))
        {
            throw new ArgumentException($"A {image.Bands}-band image cannot feed a network with {channels} input channels.", nameof(image));
        }

        int width = image.Width, height = image.Height;
        int paddedWidth = RoundUp(width), paddedHeight = RoundUp(height), plane = paddedWidth * paddedHeight;
        Tensor result = Tensor.Zeros(1, channels, paddedHeight, paddedWidth);
        Span<float> data = result.Data;
        byte[] pixels = image.Pixels;
        for (int c = 0; c < channels; c++)
        {
            float scale = 1f / (255f * normalization.StdOf(c)), offset = -normalization.MeanOf(c) / normalization.StdOf(c);
            int band = colourBands == 1 ? 0 : c;
            for (int y = 0; y < height; y++)
            {
                int from = (y * width * image.Bands) + band, to = (c * plane) + (y * paddedWidth);
                for (int x = 0; x < width; x++)
                {
                    data[to + x] = (pixels[from + (x * image.Bands)] * scale) + offset;
                }
            }
        }

        return result;

        static int RoundUp(int v) => (v + FcnSpec.Stride - 1) / FcnSpec.Stride * FcnSpec.Stride;
    }
}
