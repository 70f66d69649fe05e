using Microsoft.Extensions.Logging;

namespace SlidePlugin.Engine.Tissue;

/// <summary>Log lines of tissue detection and tiling.</summary>
internal static partial class TissueLog
{
    [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "{Slide}: {Warning}")]
    public static partial void Upsampled(ILogger logger, string slide, string warning);
}
