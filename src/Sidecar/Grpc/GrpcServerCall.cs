using System.Globalization;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using SlidePlugin.Grpc;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>
/// The state of one call on the server: reading requests, writing responses under one lock, the deadline,
/// and the one way a call ends (<see cref="EndAsync"/>): status in the trailers, or in the headers when
/// nothing was sent yet (Trailers-Only).
/// </summary>
internal sealed class GrpcServerCall : IAsyncDisposable
{
    // Timers cannot wait longer than this; a longer grpc-timeout is treated as no deadline.
    private static readonly TimeSpan LongestDeadline = TimeSpan.FromDays(24);

    private readonly GrpcServerOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _cts;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly string? _requestEncoding;
    private readonly CancellationTokenRegistration _deadlineRegistration;
    private readonly CancellationTokenSource? _deadlineCts;
    private Task _deadlineTask = Task.CompletedTask;
    private bool _headersSent;
    private bool _ended;

    public GrpcServerCall(HttpContext httpContext, GrpcServerOptions options, ILogger logger, CancellationToken serverStopping)
    {
        HttpContext = httpContext;
        _options = options;
        _logger = logger;
        _cts = CancellationTokenSource.CreateLinkedTokenSource(httpContext.RequestAborted, serverStopping);
        _requestEncoding = httpContext.Request.Headers[GrpcProtocol.MessageEncodingHeader].FirstOrDefault();
        Context = new ServerCallContext(this, ReadRequestMetadata(httpContext.Request.Headers));

        TimeSpan? timeout = GrpcProtocol.ParseTimeout(httpContext.Request.Headers[GrpcProtocol.TimeoutHeader].FirstOrDefault());
        Deadline = DateTime.MaxValue;
        if (timeout is { } t && t < LongestDeadline)
        {
            Deadline = DateTime.UtcNow + t;
            _deadlineCts = new CancellationTokenSource(t);
            _deadlineRegistration = _deadlineCts.Token.Register(() => _deadlineTask = OnDeadlineAsync());
        }
    }

    public HttpContext HttpContext { get; }

    public ServerCallContext Context { get; }

    public DateTime Deadline { get; }

    public CancellationToken CancellationToken => _cts.Token;

    public bool DeadlineExceeded => _deadlineCts?.IsCancellationRequested == true;

    /// <summary>Reads the next request message; null at the end of the request stream.</summary>
    public async Task<T?> ReadMessageAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        using CancellationTokenSource linked = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token, cancellationToken);
        try
        {
            return await GrpcFraming.ReadMessageAsync(HttpContext.Request.BodyReader, parser, _options.MaxReceiveMessageSize, _requestEncoding, linked.Token)
                .ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_cts.IsCancellationRequested)
        {
            throw CancelledException();
        }
    }

    /// <summary>Writes one response message and flushes it: the flush waits on HTTP/2 flow control, so a slow client slows the writer.</summary>
    public async Task WriteMessageAsync(IMessage message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        using CancellationTokenSource linked = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token, cancellationToken);
        try
        {
            await _writeLock.WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_cts.IsCancellationRequested)
        {
            throw CancelledException();
        }

        try
        {
            if (_ended)
            {
                throw new InvalidOperationException("Cannot write a message after the call has ended.");
            }

            PrepareHeaders();
            GrpcFraming.WriteMessage(HttpContext.Response.BodyWriter, message);
            _headersSent = true;
            await HttpContext.Response.BodyWriter.FlushAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_cts.IsCancellationRequested)
        {
            throw CancelledException();
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Sends the response headers now (before any message), with optional metadata.</summary>
    public async Task WriteResponseHeadersAsync(Metadata? metadata)
    {
        await _writeLock.WaitAsync(_cts.Token).ConfigureAwait(false);
        try
        {
            if (_headersSent || _ended)
            {
                throw new InvalidOperationException("Response headers can only be sent once per call.");
            }

            foreach (Metadata.Entry entry in metadata ?? [])
            {
                HttpContext.Response.Headers.Append(entry.Key, entry.HeaderValue);
            }

            PrepareHeaders();
            _headersSent = true;
            await HttpContext.Response.StartAsync(_cts.Token).ConfigureAwait(false);
            await HttpContext.Response.BodyWriter.FlushAsync(_cts.Token).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>
    /// Ends the call with <paramref name="status"/>: trailers when headers or messages went out, otherwise
    /// Trailers-Only (status in the headers). Later calls do nothing: the first end wins.
    /// </summary>
    public async Task EndAsync(Status status, Metadata? trailers)
    {
        await _writeLock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            await EndCoreAsync(status, trailers).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Writes a Trailers-Only error response before any handler runs (used for routing and auth errors).</summary>
    public static Task WriteTrailersOnlyAsync(HttpContext httpContext, Status status)
    {
        HttpResponse response = httpContext.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = GrpcProtocol.ContentType;
        WriteStatusHeaders(response, status);
        return response.CompleteAsync();
    }

    /// <summary>Trailers-Only: <c>grpc-status</c> and <c>grpc-message</c> in the response headers.</summary>
    private static void WriteStatusHeaders(HttpResponse response, Status status)
    {
        response.Headers[GrpcProtocol.StatusHeader] = ((int)status.StatusCode).ToString(CultureInfo.InvariantCulture);
        if (!string.IsNullOrEmpty(status.Detail))
        {
            response.Headers[GrpcProtocol.MessageHeader] = GrpcProtocol.EncodeMessage(status.Detail);
        }
    }

    private async Task EndCoreAsync(Status status, Metadata? trailers)
    {
        if (_ended)
        {
            return;
        }

        _ended = true;
        HttpResponse response = HttpContext.Response;
        if (!_headersSent && !response.HasStarted)
        {
            // Trailers-Only: one HEADERS frame with END_STREAM carries the status.
            PrepareHeaders();
            WriteStatusHeaders(response, status);

            foreach (Metadata.Entry entry in trailers ?? [])
            {
                response.Headers.Append(entry.Key, entry.HeaderValue);
            }
        }
        else
        {
            response.AppendTrailer(GrpcProtocol.StatusHeader, ((int)status.StatusCode).ToString(CultureInfo.InvariantCulture));
            if (!string.IsNullOrEmpty(status.Detail))
            {
                response.AppendTrailer(GrpcProtocol.MessageHeader, GrpcProtocol.EncodeMessage(status.Detail));
            }

            foreach (Metadata.Entry entry in trailers ?? [])
            {
                response.AppendTrailer(entry.Key, entry.HeaderValue);
            }
        }

        if (!HttpContext.RequestAborted.IsCancellationRequested)
        {
            try
            {
                await response.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
            {
                // The client went away while the status was being written: nobody is left to tell.
                ServerLog.StatusNotDelivered(_logger, Context.Method, e.Message);
            }
        }
    }

    private async Task OnDeadlineAsync()
    {
        // Timers may fire a little before the wall clock reaches the deadline; handlers compare
        // Deadline with DateTime.UtcNow, so wait out the rest (as grpc-dotnet does).
        for (TimeSpan left = Deadline - DateTime.UtcNow; left > TimeSpan.Zero; left = Deadline - DateTime.UtcNow)
        {
            await Task.Delay(left + TimeSpan.FromMilliseconds(1)).ConfigureAwait(false);
        }

        ServerLog.DeadlineExceeded(_logger, Context.Method);
        await _cts.CancelAsync().ConfigureAwait(false); // the handler's token fires
        await _writeLock.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            await EndCoreAsync(new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"), null).ConfigureAwait(false);
            // As grpc-dotnet: after the status, reset the stream so the client stops sending.
            HttpContext.Features.Get<IHttpResetFeature>()?.Reset(GrpcProtocol.Http2CancelErrorCode);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException)
        {
            ServerLog.StatusNotDelivered(_logger, Context.Method, e.Message);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private RpcException CancelledException() => DeadlineExceeded
        ? new RpcException(new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"))
        : new RpcException(new Status(StatusCode.Cancelled, "The call was cancelled."));

    private void PrepareHeaders()
    {
        if (_headersSent || HttpContext.Response.HasStarted)
        {
            return;
        }

        HttpContext.Response.StatusCode = StatusCodes.Status200OK;
        HttpContext.Response.ContentType = GrpcProtocol.ContentType;
        HttpContext.Response.Headers[GrpcProtocol.MessageAcceptEncodingHeader] = GrpcProtocol.AcceptedEncodings;
    }

    private static Metadata ReadRequestMetadata(IHeaderDictionary headers) =>
        Metadata.FromHeaders(headers.Select(h => (h.Key, (IEnumerable<string?>)h.Value)));

    public async ValueTask DisposeAsync()
    {
        await _deadlineRegistration.DisposeAsync().ConfigureAwait(false);
        await _deadlineTask.ConfigureAwait(false); // never let the deadline writer outlive the request
        _deadlineCts?.Dispose();
        _cts.Dispose();
        _writeLock.Dispose();
    }
}
