using System.Net;
using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;

namespace SlidePlugin.Client;

/// <summary>
/// Opens a <see cref="GrpcChannel"/> to a sidecar, for the generated clients (<c>new SlideService.SlideServiceClient(channel)</c>):
/// h2c (<c>http://host:port</c> or <c>host:port</c>), TLS (<c>https://</c>) or a Unix domain socket (<c>unix:/path</c>,
/// <c>unix:///path</c>); the bearer token as call credentials; reads retried on UNAVAILABLE.
/// </summary>
public static class SlidePluginChannel
{
    /// <summary>The environment variable <see cref="FromEnvironment"/> reads the address from.</summary>
    public const string AddressVariable = "SLIDEPLUGIN_ADDRESS";

    /// <summary>The environment variable <see cref="FromEnvironment"/> reads a bearer token from.</summary>
    public const string TokenVariable = "SLIDEPLUGIN_TOKEN";

    /// <summary>The address <c>slideplugin serve</c> listens on by default.</summary>
    public const string DefaultAddress = "http://127.0.0.1:50051";

    /// <summary>The services whose calls only read, retried on UNAVAILABLE (safe to repeat).</summary>
    private static readonly MethodName[] ReadOnlyMethods =
    [
        new() { Service = "slideplugin.v1.SlideService" },
        new() { Service = "slideplugin.v1.SystemService" },
        new() { Service = "slideplugin.v1.AnalysisService", Method = "GetAnalysis" },
        new() { Service = "slideplugin.v1.AnalysisService", Method = "ListAnalyses" },
        new() { Service = "slideplugin.v1.AnalysisService", Method = "ExportAnalysis" },
        new() { Service = "grpc.health.v1.Health", Method = "Check" },
    ];

    /// <summary>Opens a channel to <paramref name="address"/>.</summary>
    /// <exception cref="ArgumentException">The address is not http://, https://, unix: or host:port.</exception>
    public static GrpcChannel ForAddress(string address, SlidePluginClientOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        options ??= new SlidePluginClientOptions();
        (Uri uri, string? socketPath) = Parse(address);
        var channelOptions = new GrpcChannelOptions
        {
            MaxReceiveMessageSize = options.MaxReceiveMessageSize,
            MaxSendMessageSize = null,
            HttpHandler = options.HttpHandler ?? CreateHandler(options, socketPath),
            DisposeHttpClient = options.HttpHandler is null,
        };
        if (options.RetryReads)
        {
            channelOptions.ServiceConfig = new ServiceConfig { MethodConfigs = { RetryUnavailable() } };
        }

        if (!string.IsNullOrWhiteSpace(options.BearerToken))
        {
            string header = $"Bearer {options.BearerToken}";
            CallCredentials credentials = CallCredentials.FromInterceptor((_, metadata) =>
            {
                metadata.Add("authorization", header);
                return Task.CompletedTask;
            });
            bool secure = uri.Scheme == Uri.UriSchemeHttps;
            channelOptions.Credentials = ChannelCredentials.Create(secure ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure, credentials);
            // A token over cleartext is what the server allows on loopback and Unix sockets only.
            channelOptions.UnsafeUseInsecureChannelCallCredentials = !secure;
        }

        return GrpcChannel.ForAddress(uri, channelOptions);
    }

    /// <summary>A channel to <c>$SLIDEPLUGIN_ADDRESS</c> (default <see cref="DefaultAddress"/>) with <c>$SLIDEPLUGIN_TOKEN</c> when set.</summary>
    public static GrpcChannel FromEnvironment(SlidePluginClientOptions? options = null)
    {
        options ??= new SlidePluginClientOptions();
        options.BearerToken ??= Environment.GetEnvironmentVariable(TokenVariable) is { Length: > 0 } token ? token : null;
        string address = Environment.GetEnvironmentVariable(AddressVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment : DefaultAddress;
        return ForAddress(address, options);
    }

    private static (Uri Uri, string? SocketPath) Parse(string address)
    {
        if (address.StartsWith("unix:", StringComparison.Ordinal))
        {
            string path = address["unix:".Length..];
            return (new Uri("http://localhost"), path.StartsWith("//", StringComparison.Ordinal) ? path[2..] : path);
        }

        if (!address.Contains("://", StringComparison.Ordinal))
        {
            address = "http://" + address; // host:port, as grpcurl and the Python client take it
        }

        return Uri.TryCreate(address, UriKind.Absolute, out Uri? uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? (uri, null)
            : throw new ArgumentException($"Address '{address}' must be http://HOST:PORT, https://HOST:PORT, HOST:PORT or unix:/path.", nameof(address));
    }

    private static SocketsHttpHandler CreateHandler(SlidePluginClientOptions options, string? socketPath)
    {
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
            handler.ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }

        return handler;
    }

    private static MethodConfig RetryUnavailable()
    {
        var config = new MethodConfig
        {
            RetryPolicy = new RetryPolicy
            {
                MaxAttempts = 4,
                InitialBackoff = TimeSpan.FromMilliseconds(200),
                MaxBackoff = TimeSpan.FromSeconds(2),
                BackoffMultiplier = 2,
                RetryableStatusCodes = { StatusCode.Unavailable },
            },
        };
        foreach (MethodName name in ReadOnlyMethods)
        {
            config.Names.Add(name);
        }

        return config;
    }
}
