using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>Log events of the gRPC server layer.</summary>
internal static partial class ServerLog
{
    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "{Method} from {Peer}: {StatusCode} in {ElapsedMs:0.0} ms")]
    public static partial void CallEnded(ILogger logger, string method, string peer, StatusCode statusCode, double elapsedMs);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "Handler of {Method} threw an exception")]
    public static partial void HandlerFailed(ILogger logger, string method, Exception exception);
}
