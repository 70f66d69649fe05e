using System.Globalization;

namespace SlidePlugin.Engine.Slides;

/// <summary>Where a slide's resolution came from, in the order they are tried.</summary>
public enum MppSource
{
    /// <summary>Nothing usable: requests that need µm per pixel must give an override.</summary>
    None,

    /// <summary>Given by the caller (CLI <c>--mpp</c>, gRPC <c>mpp_override</c>).</summary>
    Override,

    /// <summary>OpenSlide's <c>openslide.mpp-x</c>/<c>openslide.mpp-y</c> (read by OpenSlide from the vendor's metadata).</summary>
    OpenSlide,

    /// <summary>The TIFF <c>XResolution</c>/<c>YResolution</c> tags with their <c>ResolutionUnit</c>.</summary>
    TiffResolution,

    /// <summary>The objective power, with the stated assumption of 10 µm / power (20x -> 0.5 µm/px).</summary>
    ObjectivePower,
}

/// <summary>
/// A slide's level-0 resolution in µm per pixel and where it came from. The order is fixed: an explicit
/// override, then OpenSlide's mpp, then TIFF resolution tags (when their unit is physical and the value
/// is plausible for a scan), then the objective power under a stated assumption, else none. It never
/// guesses silently: <see cref="Explanation"/> says what was used or why nothing was.
/// </summary>
/// <param name="MppX">µm per pixel along x, or null.</param>
/// <param name="MppY">µm per pixel along y, or null.</param>
/// <param name="Source">Where the values came from.</param>
/// <param name="Explanation">One sentence for users and logs.</param>
public sealed record SlideResolution(double? MppX, double? MppY, MppSource Source, string Explanation)
{
    /// <summary>Coarsest level-0 resolution believed to come from a scanner; a TIFF tag past it is a software default (72 dpi = 352.8 µm/px).</summary>
    public const double MaxPlausibleMpp = 10.0;

    /// <summary>Finest level-0 resolution believed to come from a scanner.</summary>
    public const double MinPlausibleMpp = 0.05;

    /// <summary>The finest resolution an override may give: finer than any microscope resolves, and tissue detection's kernels would grow without bound.</summary>
    public const double MinOverrideMpp = 0.01;

    /// <summary>The coarsest resolution an override may give (a 1 cm slide in 10 pixels).</summary>
    public const double MaxOverrideMpp = 1000;

    /// <summary>The assumption behind <see cref="MppSource.ObjectivePower"/>: µm per pixel = this / objective power.</summary>
    public const double MicronsTimesPower = 10.0;

    /// <summary>Resolves the resolution from a slide's properties and an optional override.</summary>
    public static SlideResolution Resolve(IReadOnlyDictionary<string, string> properties, double? overrideMpp = null)
    {
        ArgumentNullException.ThrowIfNull(properties);
        if (overrideMpp is { } given)
        {
            if (!(given >= MinOverrideMpp && given <= MaxOverrideMpp))
            {
                throw new SlideException(SlideErrorKind.InvalidRequest, Invariant(
                    $"The mpp override must be a number of µm per pixel from {MinOverrideMpp} to {MaxOverrideMpp}, not {given}."));
            }

            return new(given, given, MppSource.Override, Invariant($"{given:0.####} µm/px given as an override."));
        }

        if (SlideProperties.Number(properties, "openslide.mpp-x") is { } openSlideX && openSlideX > 0)
        {
            double y = SlideProperties.Number(properties, "openslide.mpp-y") is { } openSlideY && openSlideY > 0 ? openSlideY : openSlideX;
            return new(openSlideX, y, MppSource.OpenSlide, Invariant($"{openSlideX:0.####} x {y:0.####} µm/px from the slide's metadata (openslide.mpp-x/y)."));
        }

        string? tiffNote = null;
        if (TiffMpp(properties, "tiff.XResolution") is { } tiffX)
        {
            double tiffY = TiffMpp(properties, "tiff.YResolution") ?? tiffX;
            if (tiffX is >= MinPlausibleMpp and <= MaxPlausibleMpp)
            {
                return new(tiffX, tiffY, MppSource.TiffResolution, Invariant($"{tiffX:0.####} x {tiffY:0.####} µm/px from the TIFF resolution tags."));
            }

            tiffNote = Invariant($" The TIFF resolution tags say {tiffX:0.##} µm/px, which is no scanner's resolution (a software default such as 72 dpi), so they were ignored.");
        }

        if (SlideProperties.Number(properties, SlideProperties.ObjectivePower) is { } power && power > 0)
        {
            double assumed = MicronsTimesPower / power;
            return new(assumed, assumed, MppSource.ObjectivePower,
                Invariant($"{assumed:0.####} µm/px assumed from objective power {power:0.##}x at {MicronsTimesPower:0} µm / power; give an override if the scanner differs.{tiffNote}"));
        }

        return new(null, null, MppSource.None, "The slide does not say its resolution (no openslide.mpp-x, no usable TIFF resolution, no objective power)." + tiffNote);
    }

    /// <summary>µm per pixel along x, or a clear error that says how to give it.</summary>
    /// <exception cref="SlideException"><see cref="SlideErrorKind.InvalidRequest"/> when the resolution is unknown.</exception>
    public double RequireMppX(string slideName) => MppX ?? throw new SlideException(SlideErrorKind.InvalidRequest,
        $"'{slideName}' needs a resolution for this request. {Explanation} Pass the slide's µm per pixel as an override " +
        "(CLI: --mpp MICRONS_PER_PIXEL; gRPC: mpp_override). Take it from the scanner's report or the file's metadata, not " +
        "from the objective: scanners called 20x range from about 0.5 to 1.0 µm/px, and a wrong value silently scales every tile.");

    private static double? TiffMpp(IReadOnlyDictionary<string, string> properties, string key)
    {
        double micronsPerUnit = properties.GetValueOrDefault("tiff.ResolutionUnit") switch
        {
            "centimeter" => 10_000,
            "inch" => 25_400,
            _ => 0, // "none" or missing: the tags carry no physical size
        };
        return micronsPerUnit > 0 && SlideProperties.Number(properties, key) is { } pixelsPerUnit && pixelsPerUnit > 0 ? micronsPerUnit / pixelsPerUnit : null;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
