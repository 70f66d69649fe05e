using System.Net;
using System.Net.Sockets;
using Google.Protobuf;

namespace SlidePlugin.Grpc;

/// <summary>
/// A connection to a gRPC server over <see cref="HttpClient"/>: h2c (<c>http://host:port</c>, HTTP/2 with
/// prior knowledge), TLS (<c>https://</c>) or a Unix domain socket (<c>unix:/path</c> or <c>unix:///path</c>).
/// Calls are made through the four <c>Async*Call</c> methods, as with grpc-dotnet's <c>CallInvoker</c>.
/// </summary>
public sealed class GrpcChannel : IDisposable
{
    private readonly bool _disposeHandler;
    private readonly HttpMessageHandler _handler;

    private GrpcChannel(Uri address, HttpMessageHandler handler, bool disposeHandler, GrpcChannelOptions options)
    {
        Address = address;
        _handler = handler;
        _disposeHandler = disposeHandler;
        Options = options;
        HttpClient = new HttpClient(handler, disposeHandler: false)
        {
            BaseAddress = address,
            Timeout = Timeout.InfiniteTimeSpan, // deadlines are per call
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact, // h2c cannot negotiate down
        };
    }

    /// <summary>The address calls go to (for Unix sockets, <c>http://localhost</c>).</summary>
    public Uri Address { get; }

    /// <summary>The channel's options.</summary>
    public GrpcChannelOptions Options { get; }

    internal HttpClient HttpClient { get; }

    /// <summary>Opens a channel to <paramref name="address"/>.</summary>
    public static GrpcChannel ForAddress(string address, GrpcChannelOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        options ??= new GrpcChannelOptions();
        string? socketPath = null;
        Uri uri;
        if (address.StartsWith("unix:", StringComparison.Ordinal))
        {
            socketPath = address["unix:".Length..];
            if (socketPath.StartsWith("//", StringComparison.Ordinal))
            {
                socketPath = socketPath[2..];
            }

            uri = new Uri("http://localhost");
        }
        else
        {
            uri = new Uri(address);
            if (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            {
                throw new ArgumentException($"Address '{address}' must start with http://, https:// or unix:.", nameof(address));
            }
        }

        if (options.HttpHandler is not null)
        {
            return new GrpcChannel(uri, options.HttpHandler, disposeHandler: false, options);
        }

        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            // Start with a wide HTTP/2 window so streams of large messages do not wait on window updates.
            InitialHttp2StreamWindowSize = 4 * 1024 * 1024,
        };
        if (options.ServerCertificateValidation is not null)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = options.ServerCertificateValidation;
        }

        if (socketPath is not null)
        {
            string path = socketPath;
            handler.ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }

        return new GrpcChannel(uri, handler, disposeHandler: true, options);
    }

    /// <summary>Starts a unary call.</summary>
    public AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var call = new GrpcCall<TRequest, TResponse>(this, method, options);
        call.StartWithMessage(request);
        return new AsyncUnaryCall<TResponse>(call.ReadSingleResponseAsync(), call);
    }

    /// <summary>Starts a server-streaming call.</summary>
    public AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, TRequest request, CallOptions options = default)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var call = new GrpcCall<TRequest, TResponse>(this, method, options);
        call.StartWithMessage(request);
        return new AsyncServerStreamingCall<TResponse>(call, call);
    }

    /// <summary>Starts a client-streaming call.</summary>
    public AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var call = new GrpcCall<TRequest, TResponse>(this, method, options);
        IClientStreamWriter<TRequest> requests = call.StartWithStream();
        return new AsyncClientStreamingCall<TRequest, TResponse>(requests, call.ReadSingleResponseAsync(), call);
    }

    /// <summary>Starts a bidirectional streaming call.</summary>
    public AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, CallOptions options = default)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        var call = new GrpcCall<TRequest, TResponse>(this, method, options);
        IClientStreamWriter<TRequest> requests = call.StartWithStream();
        return new AsyncDuplexStreamingCall<TRequest, TResponse>(requests, call, call);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        HttpClient.Dispose();
        if (_disposeHandler)
        {
            _handler.Dispose();
        }
    }
}
