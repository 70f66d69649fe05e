using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;

namespace SlidePlugin.Grpc;

/// <summary>
/// One call over HTTP/2: sends the request, reads response messages, and settles the status from the
/// trailers, else the headers (Trailers-Only), else the HTTP status. Every failure leaves as
/// <see cref="RpcException"/>.
/// </summary>
internal sealed class GrpcCall<TRequest, TResponse> : ICallState, IAsyncStreamReader<TResponse>
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>, new()
{
    private static readonly string UserAgent = $"slideplugin-grpc-dotnet/{typeof(GrpcChannel).Assembly.GetName().Version}";

    private readonly GrpcChannel _channel;
    private readonly Method<TRequest, TResponse> _method;
    private readonly CallOptions _options;
    private readonly CancellationTokenSource? _deadlineCts;
    private readonly CancellationTokenSource _callCts;
    private readonly TaskCompletionSource<Metadata> _responseHeaders = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task<HttpResponseMessage>? _sendTask;
    private HttpResponseMessage? _response;
    private PipeReader? _reader;
    private string? _responseEncoding;
    private Status? _status;
    private int _disposed;
    private Metadata _trailers = new();
    private bool _responseChecked;

    public GrpcCall(GrpcChannel channel, Method<TRequest, TResponse> method, CallOptions options)
    {
        _channel = channel;
        _method = method;
        _options = options;
        if (options.Deadline is { } deadline && deadline != DateTime.MaxValue)
        {
            TimeSpan timeout = deadline.ToUniversalTime() - DateTime.UtcNow;
            _deadlineCts = new CancellationTokenSource(timeout > TimeSpan.Zero ? timeout : TimeSpan.Zero);
        }

        _callCts = _deadlineCts is null
            ? CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken)
            : CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken, _deadlineCts.Token);
    }

    public TResponse Current { get; private set; } = null!;

    public Task<Metadata> ResponseHeadersAsync => _responseHeaders.Task;

    public void StartWithMessage(TRequest request) => Send(new ByteArrayContent(GrpcFraming.FrameMessage(request)));

    public IClientStreamWriter<TRequest> StartWithStream()
    {
        var content = new RequestStreamContent<TRequest>(MapException, _callCts.Token);
        Send(content);
        return content;
    }

    private void Send(HttpContent content)
    {
        content.Headers.ContentType = new MediaTypeHeaderValue(GrpcProtocol.ContentType);
        var request = new HttpRequestMessage(HttpMethod.Post, _method.FullName)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        request.Headers.TryAddWithoutValidation("user-agent", UserAgent);
        request.Headers.TryAddWithoutValidation(GrpcProtocol.MessageAcceptEncodingHeader, GrpcProtocol.AcceptedEncodings);
        if (_options.Deadline is { } deadline && deadline != DateTime.MaxValue)
        {
            request.Headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcProtocol.FormatTimeout(deadline.ToUniversalTime() - DateTime.UtcNow));
        }

        if (_channel.Options.BearerToken is { Length: > 0 } token)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        foreach (Metadata.Entry entry in _options.Headers ?? [])
        {
            request.Headers.TryAddWithoutValidation(entry.Key, entry.HeaderValue);
        }

        _sendTask = _channel.HttpClient.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, _callCts.Token);
    }

    public async Task<bool> MoveNext(CancellationToken cancellationToken)
    {
        using CancellationTokenSource linked = CancellationTokenSource.CreateLinkedTokenSource(_callCts.Token, cancellationToken);
        try
        {
            await EnsureResponseAsync().ConfigureAwait(false);
            if (_status is { } finished)
            {
                return finished.StatusCode == StatusCode.OK ? false : throw new RpcException(finished, _trailers);
            }

            TResponse? message = await GrpcFraming.ReadMessageAsync(
                _reader!, _method.ResponseParser, _channel.Options.MaxReceiveMessageSize ?? int.MaxValue, _responseEncoding, linked.Token)
                .ConfigureAwait(false);
            if (message is not null)
            {
                Current = message;
                return true;
            }

            FinishFromTrailers();
            return _status!.Value.StatusCode == StatusCode.OK ? false : throw new RpcException(_status.Value, _trailers);
        }
        catch (Exception e) when (e is not RpcException || _status is null)
        {
            RpcException error = MapException(e);
            Finish(error.Status, error.Trailers);
            throw error;
        }
    }

    public async Task<TResponse> ReadSingleResponseAsync()
    {
        if (!await MoveNext(CancellationToken.None).ConfigureAwait(false))
        {
            throw Fail(new Status(StatusCode.Internal, "Failed to deserialize response message: the server sent no message."));
        }

        TResponse response = Current;
        if (await MoveNext(CancellationToken.None).ConfigureAwait(false))
        {
            throw Fail(new Status(StatusCode.Internal, "The server sent more than one message for a single-response call."));
        }

        return response;
    }

    public Status GetStatus() => _status ?? throw new InvalidOperationException("The call has not finished yet.");

    public Metadata GetTrailers() => _status is null ? throw new InvalidOperationException("The call has not finished yet.") : _trailers;

    /// <summary>The <see cref="RpcException"/> a transport failure stands for.</summary>
    internal RpcException MapException(Exception e)
    {
        if (e is RpcException rpc)
        {
            return rpc;
        }

        if (_deadlineCts?.IsCancellationRequested == true)
        {
            return new RpcException(new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"));
        }

        if (_options.CancellationToken.IsCancellationRequested)
        {
            return new RpcException(new Status(StatusCode.Cancelled, "Call canceled by the client."));
        }

        if (e is OperationCanceledException && _callCts.IsCancellationRequested)
        {
            return new RpcException(new Status(StatusCode.Cancelled, "The call was cancelled (disposed)."));
        }

        HttpProtocolException? protocol = e as HttpProtocolException ?? e.InnerException as HttpProtocolException;
        if (protocol is not null)
        {
            return protocol.ErrorCode == GrpcProtocol.Http2CancelErrorCode
                ? new RpcException(new Status(StatusCode.Cancelled, "The server reset the stream (CANCEL)."))
                : new RpcException(new Status(StatusCode.Internal, $"HTTP/2 error {protocol.ErrorCode}: {protocol.Message}"));
        }

        return e is HttpRequestException
            ? new RpcException(new Status(StatusCode.Unavailable, $"Error starting gRPC call: {e.Message}"))
            : new RpcException(new Status(StatusCode.Unavailable, $"Transport error: {e.Message}"));
    }

    private RpcException Fail(Status status)
    {
        Finish(status, _trailers);
        _callCts.Cancel();
        return new RpcException(status, _trailers);
    }

    private async Task EnsureResponseAsync()
    {
        if (_responseChecked)
        {
            return;
        }

        _responseChecked = true;
        _response = await _sendTask!.ConfigureAwait(false);
        // Past the headers, HttpClient no longer watches the token: disposing the response is what
        // resets the HTTP/2 stream (RST_STREAM CANCEL), so the server's handler sees the cancellation.
        _callCts.Token.Register(static state => ((HttpResponseMessage)state!).Dispose(), _response);
        Metadata headers = ToMetadata(_response.Headers);
        _responseHeaders.TrySetResult(headers);

        // Trailers-Only: the status came in the headers and there is no body.
        if (_response.Headers.Contains(GrpcProtocol.StatusHeader))
        {
            Finish(ReadStatus(_response.Headers), headers);
            return;
        }

        if (_response.StatusCode != HttpStatusCode.OK)
        {
            Finish(new Status(GrpcProtocol.StatusFromHttp(_response.StatusCode), $"Bad gRPC response. HTTP status code: {(int)_response.StatusCode}"), headers);
            return;
        }

        if (!GrpcProtocol.IsGrpcContentType(_response.Content.Headers.ContentType?.MediaType))
        {
            Finish(new Status(StatusCode.Unknown, $"Bad gRPC response. Invalid content-type value: {_response.Content.Headers.ContentType}"), headers);
            return;
        }

        _responseEncoding = _response.Headers.TryGetValues(GrpcProtocol.MessageEncodingHeader, out IEnumerable<string>? encodings)
            ? encodings.FirstOrDefault()
            : null;
        // Read in large segments: the default 4 KiB would split every 64 KiB tile into 16 reads.
        _reader = PipeReader.Create(
            await _response.Content.ReadAsStreamAsync(_callCts.Token).ConfigureAwait(false),
            new StreamPipeReaderOptions(bufferSize: 128 * 1024, minimumReadSize: 16 * 1024));
    }

    private void FinishFromTrailers()
    {
        HttpResponseHeaders trailers = _response!.TrailingHeaders;
        Finish(
            trailers.Contains(GrpcProtocol.StatusHeader)
                ? ReadStatus(trailers)
                : new Status(StatusCode.Internal, "No grpc-status found on response."),
            ToMetadata(trailers));
    }

    private void Finish(Status status, Metadata trailers)
    {
        if (_status is not null)
        {
            return;
        }

        _status = status;
        _trailers = trailers;
        _responseHeaders.TrySetResult(new Metadata());
    }

    private static Status ReadStatus(HttpHeaders headers)
    {
        string code = headers.GetValues(GrpcProtocol.StatusHeader).First();
        string message = headers.TryGetValues(GrpcProtocol.MessageHeader, out IEnumerable<string>? values) ? values.First() : string.Empty;
        return int.TryParse(code, out int value)
            ? new Status((StatusCode)value, GrpcProtocol.DecodeMessage(message))
            : new Status(StatusCode.Unknown, $"Unexpected grpc-status value '{code}'.");
    }

    private static Metadata ToMetadata(HttpHeaders headers) =>
        Metadata.FromHeaders(headers.Select(h => (h.Key, (IEnumerable<string?>)h.Value)));

    public void Dispose()
    {
        // Idempotent, as Dispose must be: a second call found the token source disposed and threw.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_status is null)
        {
            Finish(new Status(StatusCode.Cancelled, "Call disposed."), new Metadata());
        }

        _callCts.Cancel();
        _response?.Dispose();
        _callCts.Dispose();
        _deadlineCts?.Dispose();
    }
}

/// <summary>The request body of a streaming call: messages are pushed into it as the caller writes them.</summary>
internal sealed class RequestStreamContent<TRequest> : HttpContent, IClientStreamWriter<TRequest>
    where TRequest : class, IMessage<TRequest>, new()
{
    private readonly TaskCompletionSource<Stream> _stream = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Func<Exception, RpcException> _mapException;
    private readonly CancellationToken _callToken;

    public RequestStreamContent(Func<Exception, RpcException> mapException, CancellationToken callToken)
    {
        _mapException = mapException;
        _callToken = callToken;
    }

    public async Task WriteAsync(TRequest message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (_completed.Task.IsCompleted)
        {
            throw new InvalidOperationException("The request stream has already been completed.");
        }

        using CancellationTokenSource linked = CancellationTokenSource.CreateLinkedTokenSource(_callToken, cancellationToken);
        await _writeLock.WaitAsync(linked.Token).ConfigureAwait(false);
        try
        {
            Stream stream = await _stream.Task.WaitAsync(linked.Token).ConfigureAwait(false);
            await stream.WriteAsync(GrpcFraming.FrameMessage(message), linked.Token).ConfigureAwait(false);
            await stream.FlushAsync(linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not RpcException)
        {
            // Includes ObjectDisposedException: the transport closed the request stream under us.
            throw _mapException(e);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public Task CompleteAsync()
    {
        _completed.TrySetResult();
        return Task.CompletedTask;
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        _stream.TrySetResult(stream);
        await _completed.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override bool TryComputeLength(out long length)
    {
        length = -1;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _writeLock.Dispose();
        }

        base.Dispose(disposing);
    }
}
