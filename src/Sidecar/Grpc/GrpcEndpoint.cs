using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.Logging;
using SlidePlugin.Grpc;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>
/// The request delegate that turns HTTP/2 requests into gRPC calls: checks the protocol, the content type
/// and the token, routes by path, runs the bound handler, and ends the call with its status.
/// </summary>
public sealed class GrpcEndpoint
{
    private readonly GrpcServiceRegistry _registry;
    private readonly GrpcServerOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationToken _serverStopping;
    private readonly byte[]? _expectedAuthorization;

    /// <summary>Creates the endpoint.</summary>
    public GrpcEndpoint(GrpcServiceRegistry registry, GrpcServerOptions options, ILogger logger, CancellationToken serverStopping)
    {
        _registry = registry ?? throw new ArgumentNullException(nameof(registry));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _serverStopping = serverStopping;
        _expectedAuthorization = string.IsNullOrWhiteSpace(options.AuthToken) ? null : Encoding.UTF8.GetBytes(options.AuthToken);
    }

    /// <summary>Handles one HTTP request.</summary>
    public async Task HandleAsync(HttpContext httpContext)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        HttpRequest request = httpContext.Request;
        string path = request.Path.Value ?? string.Empty;
        if (!HttpProtocol.IsHttp2(request.Protocol))
        {
            ServerLog.CallRejected(_logger, path, request.Protocol);
            httpContext.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            httpContext.Response.Headers.Connection = "Upgrade";
            httpContext.Response.Headers.Upgrade = "h2c";
            return;
        }

        if (!HttpMethods.IsPost(request.Method))
        {
            httpContext.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }

        if (!GrpcProtocol.IsGrpcContentType(request.ContentType))
        {
            ServerLog.CallRejected(_logger, path, $"content-type '{request.ContentType}'");
            httpContext.Response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            return;
        }

        if (_expectedAuthorization is not null && !IsAuthorized(request))
        {
            ServerLog.CallRejected(_logger, path, "missing or wrong bearer token");
            await GrpcServerCall.WriteTrailersOnlyAsync(httpContext,
                new Status(StatusCode.Unauthenticated, "Missing or invalid bearer token: send 'authorization: Bearer <token>'.")).ConfigureAwait(false);
            return;
        }

        if (!_registry.TryGetMethod(path, out ServerMethod? method))
        {
            string service = path.Length > 1 ? path[1..path.LastIndexOf('/')] : string.Empty;
            string detail = _registry.HasService(service)
                ? $"Method is unimplemented: '{path}'."
                : $"Service is unimplemented: '{service}'.";
            ServerLog.CallRejected(_logger, path, detail);
            await GrpcServerCall.WriteTrailersOnlyAsync(httpContext, new Status(StatusCode.Unimplemented, detail)).ConfigureAwait(false);
            return;
        }

        // Streams may be long and large: no body size cap, no minimum data rate (backpressure is fine).
        if (httpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } maxBody)
        {
            maxBody.MaxRequestBodySize = null;
        }

        httpContext.Features.Get<IHttpMinRequestBodyDataRateFeature>()?.MinDataRate = null;
        httpContext.Features.Get<IHttpMinResponseDataRateFeature>()?.MinDataRate = null;

        await RunCallAsync(httpContext, method).ConfigureAwait(false);
    }

    private async Task RunCallAsync(HttpContext httpContext, ServerMethod method)
    {
        long started = Stopwatch.GetTimestamp();
        await using var call = new GrpcServerCall(httpContext, _options, _logger, _serverStopping);
        ServerLog.CallStarted(_logger, method.FullName, call.Context.Peer);
        Status status;
        Metadata trailers = call.Context.ResponseTrailers;
        try
        {
            await method.InvokeAsync(call).ConfigureAwait(false);
            status = call.Context.Status;
        }
        catch (RpcException e)
        {
            status = e.Status;
            foreach (Metadata.Entry entry in e.Trailers)
            {
                trailers.Add(entry);
            }
        }
        catch (Exception e) when (call.DeadlineExceeded && e is OperationCanceledException or IOException)
        {
            // The deadline cancelled the handler, or broke the write it was in; anything else is a real failure (logged below).
            status = new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded");
        }
        catch (OperationCanceledException) when (call.CancellationToken.IsCancellationRequested)
        {
            status = _serverStopping.IsCancellationRequested
                ? new Status(StatusCode.Unavailable, "The server is shutting down.")
                : new Status(StatusCode.Cancelled, "The call was cancelled.");
        }
        catch (Exception e) when (_options.StatusOf?.Invoke(e) is { } mapped)
        {
            status = mapped;
        }
        catch (Exception e)
        {
            ServerLog.HandlerFailed(_logger, method.FullName, e);
            status = _options.EnableDetailedErrors
                ? new Status(StatusCode.Unknown, $"Exception was thrown by handler. {e.GetType().Name}: {e.Message}")
                : new Status(StatusCode.Unknown, "Exception was thrown by handler.");
        }

        if (status.Detail.Length > MaxDetailLength)
        {
            // A message echoing a client's 100 KB field would not fit the client's header limits at all.
            status = new Status(status.StatusCode, string.Concat(status.Detail.AsSpan(0, MaxDetailLength), "…"));
        }

        await call.EndAsync(status, trailers).ConfigureAwait(false);
        ServerLog.CallEnded(_logger, method.FullName, status.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    /// <summary>The longest status message sent (grpc-message is a header: clients refuse large ones).</summary>
    internal const int MaxDetailLength = 1000;

    private bool IsAuthorized(HttpRequest request)
    {
        // RFC 6750: the scheme is case-insensitive ("bearer" as well as "Bearer"); the token is compared in constant time.
        string? header = request.Headers.Authorization.FirstOrDefault();
        const string Scheme = "Bearer ";
        return header is not null && header.Length > Scheme.Length && header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase)
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[Scheme.Length..].Trim()), _expectedAuthorization);
    }
}
