using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>
/// What every call goes through, health and reflection included: the bearer token, the connection reserve, the
/// shutdown grace, one status for every exception (mapped engine failures, UNKNOWN for the unexpected, logged),
/// status messages cut to a length clients accept, and one log line per call.
/// </summary>
internal sealed class CallInterceptor(GrpcServerOptions options, ServerStopping stopping, ILogger<CallInterceptor> logger) : Interceptor
{
    /// <summary>The longest status message sent (grpc-message is a header: clients refuse large ones).</summary>
    internal const int MaxDetailLength = 1000;

    private const string HealthService = "/grpc.health.v1.Health/";

    private readonly byte[]? _token = string.IsNullOrWhiteSpace(options.AuthToken) ? null : Encoding.UTF8.GetBytes(options.AuthToken);

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        TResponse? response = null;
        await RunAsync(context, async call => response = await continuation(request, call).ConfigureAwait(false)).ConfigureAwait(false);
        return response!;
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        TResponse? response = null;
        await RunAsync(context, async call => response = await continuation(requestStream, call).ConfigureAwait(false)).ConfigureAwait(false);
        return response!;
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, call => continuation(request, responseStream, call));

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation) =>
        RunAsync(context, call => continuation(requestStream, responseStream, call));

    private async Task RunAsync(ServerCallContext context, Func<ServerCallContext, Task> handler)
    {
        long started = Stopwatch.GetTimestamp();
        StatusCode code = StatusCode.OK;
        try
        {
            HttpContext http = context.GetHttpContext();
            Admit(context, http);
            // Grpc.AspNetCore finds the HttpContext of a replaced call context under this key (it activates services with it).
            context.UserState["__HttpContext"] = http;
            using var call = new GracefulCallContext(context, stopping.Token);
            try
            {
                await handler(call).ConfigureAwait(false);
                code = context.Status.StatusCode;
            }
            catch (OperationCanceledException) when (stopping.Token.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, "The server is shutting down."));
            }
        }
        catch (RpcException e)
        {
            code = e.StatusCode;
            if (e.Status.Detail.Length > MaxDetailLength)
            {
                // A message echoing a client's 100 KB field would not fit the client's header limits at all.
                throw new RpcException(new Status(e.StatusCode, string.Concat(e.Status.Detail.AsSpan(0, MaxDetailLength), "…")), e.Trailers);
            }

            throw;
        }
        catch (Exception e) when (context.CancellationToken.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // The deadline or the client ended the call (the server reports DEADLINE_EXCEEDED itself); not a failure.
            code = context.Deadline <= DateTime.UtcNow ? StatusCode.DeadlineExceeded : StatusCode.Cancelled;
            throw;
        }
        catch (Exception e) when (options.StatusOf?.Invoke(e) is { } status)
        {
            code = status.StatusCode;
            throw new RpcException(status.Detail.Length > MaxDetailLength ? new Status(status.StatusCode, string.Concat(status.Detail.AsSpan(0, MaxDetailLength), "…")) : status);
        }
        catch (Exception e)
        {
            code = StatusCode.Unknown;
            ServerLog.HandlerFailed(logger, context.Method, e);
            throw new RpcException(options.EnableDetailedErrors
                ? new Status(StatusCode.Unknown, $"Exception was thrown by handler. {e.GetType().Name}: {e.Message}")
                : new Status(StatusCode.Unknown, "Exception was thrown by handler."));
        }
        finally
        {
            ServerLog.CallEnded(logger, context.Method, context.Peer, code, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    }

    /// <summary>The bearer token, then the connection reserve: a health-only connection may call health alone.</summary>
    private void Admit(ServerCallContext context, HttpContext http)
    {
        if (_token is not null && !IsAuthorized(http.Request))
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated, "Missing or invalid bearer token: send 'authorization: Bearer <token>'."));
        }

        if (ConnectionBudget.IsHealthOnly(http) && !context.Method.StartsWith(HealthService, StringComparison.Ordinal))
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, ConnectionBudget.HealthOnlyMessage(http)));
        }
    }

    private bool IsAuthorized(HttpRequest request)
    {
        // RFC 6750: the scheme is case-insensitive ("bearer" as well as "Bearer"); the token is compared in constant time.
        string? header = request.Headers.Authorization.FirstOrDefault();
        const string Scheme = "Bearer ";
        return header is not null && header.Length > Scheme.Length && header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase)
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[Scheme.Length..].Trim()), _token);
    }

    /// <summary>The call's context with a token that also fires when the shutdown grace is over.</summary>
    private sealed class GracefulCallContext(ServerCallContext inner, CancellationToken graceOver) : ServerCallContext, IDisposable
    {
        private readonly CancellationTokenSource _cancel = CancellationTokenSource.CreateLinkedTokenSource(inner.CancellationToken, graceOver);

        protected override string MethodCore => inner.Method;

        protected override string HostCore => inner.Host;

        protected override string PeerCore => inner.Peer;

        protected override DateTime DeadlineCore => inner.Deadline;

        protected override Metadata RequestHeadersCore => inner.RequestHeaders;

        protected override CancellationToken CancellationTokenCore => _cancel.Token;

        protected override Metadata ResponseTrailersCore => inner.ResponseTrailers;

        protected override Status StatusCore
        {
            get => inner.Status;
            set => inner.Status = value;
        }

        protected override WriteOptions? WriteOptionsCore
        {
            get => inner.WriteOptions;
            set => inner.WriteOptions = value;
        }

        protected override AuthContext AuthContextCore => inner.AuthContext;

        protected override IDictionary<object, object> UserStateCore => inner.UserState;

        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => inner.CreatePropagationToken(options);

        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => inner.WriteResponseHeadersAsync(responseHeaders);

        public void Dispose() => _cancel.Dispose();
    }
}

/// <summary>Fires when the shutdown grace is over: running calls are cancelled and answered UNAVAILABLE.</summary>
internal sealed class ServerStopping(CancellationToken token)
{
    public CancellationToken Token { get; } = token;
}
