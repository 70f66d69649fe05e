using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;

namespace SlidePlugin.Engine.Segmentation;

/// <summary>One segmentation: the image segmented, its maps, and where it lies on its slide.</summary>
public sealed record SegmentationResult(Raster Image, SegmentationMap Map, SegmentationPlacement Placement);

/// <summary>
/// A loaded FCN-MIL checkpoint, ready to segment uploaded images and slide regions. Calls are serialised (one forward
/// pass at a time uses the engine's threads fully; the network's buffers are not shared between passes).
/// </summary>
public sealed class SegmentationModel
{
    private readonly FullyConvolutionalNet _net;
    private readonly Lock _gate = new();

    private SegmentationModel(FullyConvolutionalNet net, SegmentationCard card, string path)
    {
        _net = net;
        Card = card;
        Path = path;
    }

    /// <summary>The card.</summary>
    public SegmentationCard Card { get; }

    /// <summary>The weights file.</summary>
    public string Path { get; }

    /// <summary>Loads a checkpoint (see <see cref="SegmentationCheckpoint.Load"/> for the errors).</summary>
    public static SegmentationModel Load(string weightsPath)
    {
        (FullyConvolutionalNet net, SegmentationCard card) = SegmentationCheckpoint.Load(weightsPath);
        return new SegmentationModel(net, card, weightsPath);
    }

    /// <summary>Segments an image as it is (its pixels are taken to be at the model's resolution).</summary>
    public SegmentationResult SegmentImage(Raster image, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        if ((long)image.Width * image.Height > SlideRegionReader.MaxOutputPixels)
        {
            throw new ArgumentException($"The image is {image.Width}x{image.Height}; at most {SlideRegionReader.MaxOutputPixels} pixels are segmented in one call: cut it first.", nameof(image));
        }

        return new SegmentationResult(image, Predict(image, cancellationToken), SegmentationPlacement.Image);
    }

    /// <summary>
    /// Segments the level-0 rectangle of <paramref name="slide"/> (resolution <paramref name="slideMpp"/>), read at
    /// <paramref name="targetMpp"/> or else at the card's mpp.
    /// </summary>
    /// <exception cref="ArgumentException">Neither a target mpp nor one in the card.</exception>
    /// <exception cref="SlideException">A rectangle outside the slide or too large, or a failed read.</exception>
    public SegmentationResult SegmentRegion(Slide slide, double slideMpp, long x, long y, long width, long height, double? targetMpp = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(slide);
        (Raster image, SegmentationPlacement placement) = SlideRegionReader.Read(slide, slideMpp, x, y, width, height, ReadMpp(targetMpp));
        return new SegmentationResult(image, Predict(image, cancellationToken), placement);
    }

    /// <summary>The resolution slide regions are read at: <paramref name="targetMpp"/>, or else the card's.</summary>
    /// <exception cref="ArgumentException">Neither a target mpp nor one in the card.</exception>
    public double ReadMpp(double? targetMpp) => targetMpp ?? Card.Mpp
        ?? throw new ArgumentException($"Segmentation model '{Card.Name}' records no mpp; give the resolution to read the region at (CLI: --target-mpp; gRPC: target_mpp).");

    private SegmentationMap Predict(Raster image, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return FcnMil.Predict(_net, image, Card.Normalization(), Card.ImageLevelThreshold, cancellationToken: cancellationToken);
        }
    }
}
