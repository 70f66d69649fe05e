using System.Globalization;

namespace SlidePlugin.Engine.Slides;

/// <summary>Reading typed values out of OpenSlide's string properties, in one place.</summary>
internal static class SlideProperties
{
    /// <summary>The objective power property (e.g. "20").</summary>
    public const string ObjectivePower = "openslide.objective-power";

    /// <summary>A finite number, or null when the property is missing or not a number.</summary>
    public static double? Number(IReadOnlyDictionary<string, string> properties, string key) =>
        properties.TryGetValue(key, out string? text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
            && double.IsFinite(value)
            ? value
            : null;

    /// <summary>An integer, or null when the property is missing or not an integer.</summary>
    public static long? Long(IReadOnlyDictionary<string, string> properties, string key) =>
        long.TryParse(properties.GetValueOrDefault(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out long value) ? value : null;
}
