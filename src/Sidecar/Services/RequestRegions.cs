using SlidePlugin.Engine.Slides;
using SlidePlugin.Protos.V1;

namespace SlidePlugin.Sidecar.Services;

/// <summary>The level-0 rectangle a request names: its <see cref="Rect"/>, or the whole slide when it gives none (width or height 0).</summary>
internal static class RequestRegions
{
    /// <summary><paramref name="region"/> when it has an area, else the whole of <paramref name="slide"/>.</summary>
    public static (long X, long Y, long Width, long Height) OrWholeSlide(Rect? region, Slide slide) =>
        region is { Width: > 0, Height: > 0 } r ? (r.X, r.Y, r.Width, r.Height) : (0, 0, slide.Dimensions.Width, slide.Dimensions.Height);
}
