namespace SlidePlugin.Engine.Slides;

/// <summary>One pyramid level.</summary>
/// <param name="Width">Width in this level's pixels.</param>
/// <param name="Height">Height in this level's pixels.</param>
/// <param name="Downsample">Downsample relative to level 0.</param>
public sealed record SlideLevel(long Width, long Height, double Downsample);

/// <summary>The non-empty region of a slide (openslide.bounds-*), in level-0 pixels.</summary>
public sealed record SlideBounds(long X, long Y, long Width, long Height);

/// <summary>
/// What a client needs to know about a slide before reading it: geometry, resolution and where it came
/// from, objective power, bounds, background colour, quick hash, and every property OpenSlide reports.
/// </summary>
public sealed record SlideInfo(
    string Path,
    string? Vendor,
    long Width,
    long Height,
    IReadOnlyList<SlideLevel> Levels,
    SlideResolution Resolution,
    double? ObjectivePower,
    SlideBounds? Bounds,
    string BackgroundColor,
    string? QuickHash,
    IReadOnlyDictionary<string, string> Properties,
    IReadOnlyDictionary<string, (long Width, long Height)> AssociatedImages)
{
    /// <summary>Collects the info of an open slide; <paramref name="mppOverride"/> takes precedence over its metadata.</summary>
    public static SlideInfo Of(Slide slide, double? mppOverride = null)
    {
        ArgumentNullException.ThrowIfNull(slide);
        IReadOnlyDictionary<string, string> p = slide.Properties;
        return new SlideInfo(
            slide.Path,
            slide.Vendor,
            slide.Dimensions.Width,
            slide.Dimensions.Height,
            slide.LevelDimensions.Select((d, i) => new SlideLevel(d.Width, d.Height, slide.LevelDownsamples[i])).ToList(),
            SlideResolution.Resolve(p, mppOverride),
            SlideProperties.Number(p, SlideProperties.ObjectivePower),
            BoundsOf(p),
            p.GetValueOrDefault("openslide.background-color") ?? "FFFFFF",
            p.GetValueOrDefault("openslide.quickhash-1"),
            p,
            slide.AssociatedImageDimensions);
    }

    /// <summary>The <c>openslide.bounds-*</c> rectangle, or null unless all four properties are there.</summary>
    public static SlideBounds? BoundsOf(IReadOnlyDictionary<string, string> properties)
    {
        ArgumentNullException.ThrowIfNull(properties);
        return SlideProperties.Long(properties, "openslide.bounds-x") is { } x && SlideProperties.Long(properties, "openslide.bounds-y") is { } y
            && SlideProperties.Long(properties, "openslide.bounds-width") is { } w && SlideProperties.Long(properties, "openslide.bounds-height") is { } h
            ? new SlideBounds(x, y, w, h)
            : null;
    }
}
