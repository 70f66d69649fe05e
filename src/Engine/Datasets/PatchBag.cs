using SlidePlugin.Engine.Imaging;
using System.Runtime.CompilerServices;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Datasets;

/// <summary>
/// Per-channel normalisation applied when patches become a tensor: x = (value / 255 − mean) / std.
/// <see cref="UnitRange"/> is torchvision's <c>ToTensor()</c> alone; <see cref="Mnist"/> is Ilse et al.'s MNIST-bags transform.
/// </summary>
public sealed record PatchNormalization(IReadOnlyList<float> Mean, IReadOnlyList<float> Std)
{
    /// <summary>Values / 255, nothing else (torchvision <c>ToTensor()</c>).</summary>
    public static PatchNormalization UnitRange { get; } = new([0f], [1f]);

    /// <summary><c>Normalize((0.1307,), (0.3081,))</c> after <c>ToTensor()</c>, as Ilse et al.'s MNIST-bags loader.</summary>
    public static PatchNormalization Mnist { get; } = new([0.1307f], [0.3081f]);

    /// <summary>
    /// <c>Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))</c> after <c>ToTensor()</c>: values in [−1, 1], as Ilse et al.'s
    /// histology loaders (zero-centred inputs keep the first ReLUs from starting half dead).
    /// </summary>
    public static PatchNormalization Centered { get; } = new([0.5f], [0.5f]);

    internal float MeanOf(int channel) => Mean[Mean.Count == 1 ? 0 : channel];

    internal float StdOf(int channel) => Std[Std.Count == 1 ? 0 : channel];
}

/// <summary>
/// The patches of one bag as 8-bit pixels, interleaved (patch, row, column, channel): a quarter of the float size,
/// so whole data sets fit in memory; <see cref="ToTensor"/> makes the model's [N, C, P, P] input.
/// </summary>
public sealed class PatchBag
{
    /// <summary>Wraps <paramref name="pixels"/>: <paramref name="count"/> patches of size x size x channels bytes.</summary>
    public PatchBag(byte[] pixels, int count, int patchSize, int channels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if ((long)count * patchSize * patchSize * channels != pixels.Length)
        {
            throw new ArgumentException($"{pixels.Length} bytes are not {count} patches of {patchSize}x{patchSize}x{channels}.", nameof(pixels));
        }

        Pixels = pixels;
        Count = count;
        PatchSize = patchSize;
        Channels = channels;
    }

    /// <summary>
    /// A slide tile as models of RGB patches take it, the same for analysis, ScoreBag and training bags: RGB (grey spread,
    /// alpha composited on white), resized to <paramref name="patchSize"/> when it has another size.
    /// </summary>
    public static Raster PatchOf(Raster raster, int patchSize)
    {
        ArgumentNullException.ThrowIfNull(raster);
        Raster rgb = raster.ToRgb((255, 255, 255));
        return rgb.Width == patchSize && rgb.Height == patchSize ? rgb : ImageCodec.Resize(rgb, patchSize, patchSize);
    }

    /// <summary>Interleaved pixels: patch, row, column, channel.</summary>
    public byte[] Pixels { get; }

    /// <summary>Number of patches (instances).</summary>
    public int Count { get; }

    /// <summary>Patch edge in pixels.</summary>
    public int PatchSize { get; }

    /// <summary>1 (grey) or 3 (RGB).</summary>
    public int Channels { get; }

    /// <summary>Bytes held.</summary>
    public long ByteSize => Pixels.LongLength;

    /// <summary>
    /// The bag as a [N, C, P, P] float tensor, normalised. With <paramref name="augment"/>, each patch gets a random
    /// horizontal flip and a random multiple of 90° rotation (the dihedral symmetries of a histology patch).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a slide analysis calls it about ten times: tier-0 code was 3.6x slower
    public Tensor ToTensor(PatchNormalization normalization, TensorRandom? augment = null)
    {
        ArgumentNullException.ThrowIfNull(normalization);
        int p = PatchSize, c = Channels, plane = p * p;
        Tensor result = Tensor.Empty(Count, c, p, p);
        Span<float> data = result.Data;
        Span<float> scale = stackalloc float[c], offset = stackalloc float[c];
        for (int channel = 0; channel < c; channel++)
        {
            scale[channel] = 1f / (255f * normalization.StdOf(channel));
            offset[channel] = -normalization.MeanOf(channel) / normalization.StdOf(channel);
        }

        for (int n = 0; n < Count; n++)
        {
            int flip = 0, turns = 0;
            if (augment is not null)
            {
                flip = augment.NextInt(2);
                turns = augment.NextInt(4);
            }

            ReadOnlySpan<byte> source = Pixels.AsSpan(n * plane * c, plane * c);
            Span<float> target = data.Slice(n * plane * c, plane * c);
            bool transformed = flip != 0 || turns != 0;   // never in inference: skip the per-pixel source lookup there
            for (int to = 0; to < plane; to++)
            {
                int from = to;
                if (transformed)
                {
                    (int sx, int sy) = SourceOf(to % p, to / p, p, flip, turns);
                    from = (sy * p) + sx;
                }

                for (int channel = 0; channel < c; channel++)
                {
                    target[(channel * plane) + to] = (source[(from * c) + channel] * scale[channel]) + offset[channel];
                }
            }
        }

        return result;
    }

    /// <summary>Where output pixel (x, y) comes from after a horizontal flip (optional) then <paramref name="turns"/> quarter turns.</summary>
    private static (int X, int Y) SourceOf(int x, int y, int size, int flip, int turns)
    {
        int last = size - 1;
        for (int t = 0; t < turns; t++)
        {
            (x, y) = (y, last - x); // undo one clockwise quarter turn
        }

        return flip == 1 ? (last - x, y) : (x, y);
    }
}
