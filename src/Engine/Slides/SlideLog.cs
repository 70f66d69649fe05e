using Microsoft.Extensions.Logging;

namespace SlidePlugin.Engine.Slides;

/// <summary>Log lines of the slide layer.</summary>
internal static partial class SlideLog
{
    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "{Slide}: {Which} read through OpenSlide, not decoded directly: {Reason}")]
    public static partial void DirectReadsOff(ILogger logger, string slide, string which, string reason);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "{Slide}: every level read through OpenSlide: {Reason}")]
    public static partial void DirectReadsDisagree(ILogger logger, string slide, string reason);
}
