using Microsoft.AspNetCore.Http;
using SlidePlugin.Grpc;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>
/// What a handler knows about its call, shaped like grpc-dotnet's <c>ServerCallContext</c>: method, peer,
/// deadline, request metadata, a cancellation token that fires on deadline, client cancel or shutdown,
/// and the response headers and trailers it may set.
/// </summary>
public sealed class ServerCallContext
{
    private readonly GrpcServerCall _call;

    internal ServerCallContext(GrpcServerCall call, Metadata requestHeaders)
    {
        _call = call;
        RequestHeaders = requestHeaders;
    }

    /// <summary>The method's path, <c>/package.Service/Method</c>.</summary>
    public string Method => _call.HttpContext.Request.Path.Value ?? string.Empty;

    /// <summary>The caller's address, e.g. <c>ipv4:127.0.0.1:51234</c> or <c>unix:</c>.</summary>
    public string Peer
    {
        get
        {
            ConnectionInfo connection = _call.HttpContext.Connection;
            return connection.RemoteIpAddress switch
            {
                null => "unix:",
                { AddressFamily: System.Net.Sockets.AddressFamily.InterNetworkV6 } ip => $"ipv6:[{ip}]:{connection.RemotePort}",
                var ip => $"ipv4:{ip}:{connection.RemotePort}",
            };
        }
    }

    /// <summary>The call's deadline (UTC), or <see cref="DateTime.MaxValue"/> when the client set none.</summary>
    public DateTime Deadline => _call.Deadline;

    /// <summary>Fires when the deadline passes, the client cancels, or the server stops.</summary>
    public CancellationToken CancellationToken => _call.CancellationToken;

    /// <summary>The request's custom metadata.</summary>
    public Metadata RequestHeaders { get; }

    /// <summary>Trailers sent with the status.</summary>
    public Metadata ResponseTrailers { get; } = new();

    /// <summary>The status to end with when the handler returns normally (default OK).</summary>
    public Status Status { get; set; } = Status.DefaultSuccess;

    /// <summary>Sends response headers with this metadata now; allowed once, before the first message.</summary>
    public Task WriteResponseHeadersAsync(Metadata responseHeaders) => _call.WriteResponseHeadersAsync(responseHeaders);

    /// <summary>The underlying HTTP context, for what the gRPC abstraction does not cover.</summary>
    public HttpContext GetHttpContext() => _call.HttpContext;
}
