using Grpc.Core;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>Protocol-level settings of the gRPC server.</summary>
public sealed class GrpcServerOptions
{
    /// <summary>The default largest request message, as gRPC's: 4 MiB.</summary>
    public const int DefaultMaxReceiveMessageSize = 4 * 1024 * 1024;

    /// <summary>Largest request message accepted; past it the call ends with RESOURCE_EXHAUSTED. Default 4 MiB.</summary>
    public int MaxReceiveMessageSize { get; set; } = DefaultMaxReceiveMessageSize;

    /// <summary>When true, handler exceptions send their type and message to the client; otherwise only UNKNOWN.</summary>
    public bool EnableDetailedErrors { get; set; }

    /// <summary>When set, every call must carry <c>authorization: Bearer &lt;token&gt;</c>; otherwise UNAUTHENTICATED.</summary>
    public string? AuthToken { get; set; }

    /// <summary>
    /// The status for an exception a handler let through, or null for an unexpected one (logged, then UNKNOWN). The
    /// sidecar maps engine failures here in one place (SlideStatus).
    /// </summary>
    public Func<Exception, Status?>? StatusOf { get; set; }
}
