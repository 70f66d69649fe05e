namespace SlidePlugin.Engine.Segmentation;

/// <summary>
/// What the FCN says about one image, at its output resolution (one map pixel per <see cref="Stride"/> x
/// <see cref="Stride"/> input pixels, the last row and column covering the image's remainder): per-class
/// probabilities, the argmax label map and each class's image-level presence (its largest probability, what the MIL
/// loss trains).
/// </summary>
public sealed class SegmentationMap
{
    /// <summary>
    /// Wraps maps computed for a <paramref name="width"/> x <paramref name="height"/> image, whose argmax considered the
    /// classes present by <paramref name="imageLevelThreshold"/> (see <see cref="IsPresent(int)"/>).
    /// </summary>
    public SegmentationMap(int width, int height, int classes, float[] probabilities, byte[] labels, float[] presence, float? imageLevelThreshold = null)
    {
        ArgumentNullException.ThrowIfNull(probabilities);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(presence);
        Width = width;
        Height = height;
        Classes = classes;
        MapWidth = (width + Stride - 1) / Stride;
        MapHeight = (height + Stride - 1) / Stride;
        if (probabilities.Length != classes * MapWidth * MapHeight || labels.Length != MapWidth * MapHeight || presence.Length != classes)
        {
            throw new ArgumentException($"Maps of a {width}x{height} image with {classes} classes need [{classes}, {MapHeight}, {MapWidth}] probabilities, {MapHeight}x{MapWidth} labels and {classes} presences.");
        }

        Probabilities = probabilities;
        Labels = labels;
        Presence = presence;
        ImageLevelThreshold = imageLevelThreshold;
    }

    /// <summary>Input pixels per map pixel along each axis.</summary>
    public static int Stride => FcnSpec.Stride;

    /// <summary>Input width in pixels.</summary>
    public int Width { get; }

    /// <summary>Input height in pixels.</summary>
    public int Height { get; }

    /// <summary>Classes, background (0) included.</summary>
    public int Classes { get; }

    /// <summary>Map width: ⌈width / stride⌉.</summary>
    public int MapWidth { get; }

    /// <summary>Map height: ⌈height / stride⌉.</summary>
    public int MapHeight { get; }

    /// <summary>[K, MapHeight, MapWidth] softmax probabilities, row-major.</summary>
    public float[] Probabilities { get; }

    /// <summary>MapHeight x MapWidth class indices: the argmax over the classes allowed (see <see cref="FcnMil.Predict"/>).</summary>
    public byte[] Labels { get; }

    /// <summary>Per class, its largest probability anywhere in the image.</summary>
    public float[] Presence { get; }

    /// <summary>The presence a class needed for the argmax to consider it; null: every class was considered.</summary>
    public float? ImageLevelThreshold { get; }

    /// <summary>Whether the argmax considered class <paramref name="c"/>: the background always, the others by <see cref="ImageLevelThreshold"/>.</summary>
    public bool IsPresent(int c) => IsPresent(c, Presence[c], ImageLevelThreshold);

    /// <summary>The rule of <see cref="IsPresent(int)"/> for a class of <paramref name="presence"/> under <paramref name="threshold"/>.</summary>
    internal static bool IsPresent(int c, float presence, float? threshold) => c == 0 || threshold is not { } t || presence >= t;

    /// <summary>Class <paramref name="c"/>'s probability map, MapHeight x MapWidth.</summary>
    public ReadOnlySpan<float> ClassMap(int c) => Probabilities.AsSpan(c * MapWidth * MapHeight, MapWidth * MapHeight);

    /// <summary>The label map at input size (nearest: each map pixel fills its stride x stride block).</summary>
    public byte[] LabelsAtInputSize()
    {
        var labels = new byte[Width * Height];
        for (int y = 0; y < Height; y++)
        {
            int row = y / Stride * MapWidth;
            for (int x = 0; x < Width; x++)
            {
                labels[(y * Width) + x] = Labels[row + (x / Stride)];
            }
        }

        return labels;
    }

    /// <summary>Map pixels labelled with each class.</summary>
    public long[] LabelCounts()
    {
        var counts = new long[Classes];
        foreach (byte label in Labels)
        {
            counts[label]++;
        }

        return counts;
    }
}
