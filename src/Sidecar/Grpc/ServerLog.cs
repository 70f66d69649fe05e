using Microsoft.Extensions.Logging;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>Log events of the gRPC server layer.</summary>
internal static partial class ServerLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "Call {Method} started from {Peer}")]
    public static partial void CallStarted(ILogger logger, string method, string peer);

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "Call {Method} ended with {StatusCode} in {ElapsedMs:0.0} ms")]
    public static partial void CallEnded(ILogger logger, string method, SlidePlugin.Grpc.StatusCode statusCode, double elapsedMs);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "Handler of {Method} threw an exception")]
    public static partial void HandlerFailed(ILogger logger, string method, Exception exception);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Call {Method} exceeded its deadline")]
    public static partial void DeadlineExceeded(ILogger logger, string method);

    [LoggerMessage(EventId = 5, Level = LogLevel.Debug, Message = "Status of {Method} not delivered: {Reason}")]
    public static partial void StatusNotDelivered(ILogger logger, string method, string reason);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "Rejected call to {Path}: {Reason}")]
    public static partial void CallRejected(ILogger logger, string path, string reason);
}
