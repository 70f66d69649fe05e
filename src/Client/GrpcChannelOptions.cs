using System.Net.Security;

namespace SlidePlugin.Grpc;

/// <summary>How a <see cref="GrpcChannel"/> connects.</summary>
public sealed class GrpcChannelOptions
{
    /// <summary>Largest response message accepted; default 4 MiB. Null means no limit.</summary>
    public int? MaxReceiveMessageSize { get; set; } = GrpcProtocol.DefaultMaxReceiveMessageSize;

    /// <summary>Sent as <c>authorization: Bearer &lt;token&gt;</c> on every call when set.</summary>
    public string? BearerToken { get; set; }

    /// <summary>Validates the server's TLS certificate (e.g. to trust a self-signed one); default: the system's rules.</summary>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; set; }

    /// <summary>A handler to use instead of the channel's own <see cref="System.Net.Http.SocketsHttpHandler"/>; the channel does not dispose it.</summary>
    public HttpMessageHandler? HttpHandler { get; set; }
}

/// <summary>Per-call options: metadata, deadline, cancellation.</summary>
/// <param name="Headers">Request metadata.</param>
/// <param name="Deadline">When the call must be done (UTC); sent as <c>grpc-timeout</c>.</param>
/// <param name="CancellationToken">Cancels the call; the server sees a stream reset.</param>
public readonly record struct CallOptions(Metadata? Headers = null, DateTime? Deadline = null, CancellationToken CancellationToken = default);
