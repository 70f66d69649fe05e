using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Serilog;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Sidecar.Grpc;
using SlidePlugin.Sidecar.Grpc.Health;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace SlidePlugin.Sidecar.Hosting;

/// <summary>Where and how the sidecar listens.</summary>
public sealed record ServerSettings
{
    /// <summary>Default address: loopback only.</summary>
    public const string DefaultListen = "127.0.0.1:50051";

    /// <summary>TCP address <c>HOST:PORT</c> (IPv4, <c>[IPv6]</c> or <c>localhost</c>); port 0 picks a free port.</summary>
    public string Listen { get; init; } = DefaultListen;

    /// <summary>A Unix domain socket path to listen on instead of TCP.</summary>
    public string? UnixSocket { get; init; }

    /// <summary>An HTTP/1.1 address (<c>HOST:PORT</c>) for gRPC-Web and the HTTP/JSON routes, besides the gRPC one.</summary>
    public string? WebListen { get; init; }

    /// <summary>Browser origins allowed to call the web address across origins (CORS); none by default.</summary>
    public IReadOnlyList<string> WebOrigins { get; init; } = [];

    /// <summary>PEM certificate for TLS (with <see cref="TlsKeyFile"/>).</summary>
    public string? TlsCertificateFile { get; init; }

    /// <summary>PEM private key for TLS.</summary>
    public string? TlsKeyFile { get; init; }

    /// <summary>Protocol options: receive limit, detailed errors, bearer token.</summary>
    public GrpcServerOptions Grpc { get; init; } = new();

    /// <summary>Connections served at once (a few more are kept for health checks): idle sockets cannot exhaust file descriptors.</summary>
    public long MaxConnections { get; init; } = 1024;

    /// <summary>How long running calls may go on after SIGTERM before they are cancelled.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>The configuration cannot be served (bad address, missing token for a public address, bad TLS files).</summary>
public sealed class ServerConfigurationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ServerConfigurationException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public ServerConfigurationException() { }

    /// <summary>Creates the exception.</summary>
    public ServerConfigurationException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// The sidecar's server: Kestrel carrying HTTP/2, Grpc.AspNetCore on top, and the services added to a
/// <see cref="GrpcServiceRegistry"/>. Health and reflection are always there; every call passes <see cref="CallInterceptor"/>.
/// </summary>
public sealed class SidecarServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _graceOver;

    private SidecarServer(WebApplication app, HealthService health, ServerSettings settings, CancellationTokenSource graceOver)
    {
        _app = app;
        _graceOver = graceOver;
        Health = health;
        Settings = settings;
    }

    /// <summary>The health service, to set per-service statuses.</summary>
    public HealthService Health { get; }

    /// <summary>What the server was built with.</summary>
    public ServerSettings Settings { get; }

    /// <summary>The gRPC address bound, known after <see cref="StartAsync"/> (port 0 resolved).</summary>
    public IReadOnlyList<string> Addresses => [.. Bound.Take(1)];

    /// <summary>The <see cref="ServerSettings.WebListen"/> address bound (gRPC-Web, HTTP/JSON), when there is one.</summary>
    public string? WebAddress => Settings.WebListen is null ? null : Bound.Skip(1).FirstOrDefault();

    // Kestrel binds its endpoints in the order they were configured: gRPC first, then web.
    private IEnumerable<string> Bound =>
        _app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];

    /// <summary>The OpenAPI document's name: served at <c>/openapi.json</c>.</summary>
    private const string OpenApiDocument = "openapi";

    /// <summary>Thread-pool threads kept for answering calls beyond the engine's compute threads.</summary>
    private const int RequestThreads = 4;

    /// <summary>
    /// Raises the thread pool's minimum so that calls are answered while the engine computes. A training run or an
    /// analysis keeps every core busy in the engine's parallel loops, which run on pool threads; with the pool's
    /// default minimum (one thread per core) a second call waited for the whole run (20 s in the training service's
    /// test, which then saw no ResourceExhausted), as the pool added no thread while its threads were all computing.
    /// </summary>
    private static void ReserveThreadsForRequests()
    {
        ThreadPool.GetMinThreads(out int workers, out int completionPorts);
        int wanted = Math.Max(Environment.ProcessorCount, EngineThreads.Planned) + RequestThreads;
        if (workers < wanted)
        {
            ThreadPool.SetMinThreads(wanted, completionPorts);
        }
    }

    /// <summary>Builds the server; <paramref name="bindServices"/> adds the product's (or a test's) services.</summary>
    /// <exception cref="ServerConfigurationException">The settings cannot be served; the message says why.</exception>
    public static SidecarServer Create(ServerSettings settings, Serilog.ILogger logger, Action<GrpcServiceRegistry> bindServices)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(bindServices);
        var connections = new ConnectionBudget(settings.MaxConnections);
        Action<KestrelServerOptions> listen = ConfigureListening(settings, connections);
        ReserveThreadsForRequests();

        var registry = new GrpcServiceRegistry();
        var health = new HealthService();
        health.BindTo(registry);
        bindServices(registry);
        health.SetStatus(string.Empty, ServingStatus.Serving);
        foreach (string service in registry.ServiceNames)
        {
            health.SetStatus(service, ServingStatus.Serving);
        }

        var graceOver = new CancellationTokenSource();
        settings.Grpc.StatusOf ??= SlidePlugin.Sidecar.Services.SlideStatus.From;
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Services.AddSerilog(logger, dispose: false);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.ShutdownGrace + TimeSpan.FromSeconds(1));
        builder.Services.AddSingleton(new ServerStopping(graceOver.Token));
        builder.Services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = settings.Grpc.MaxReceiveMessageSize;
            grpc.MaxSendMessageSize = null;
            grpc.EnableDetailedErrors = settings.Grpc.EnableDetailedErrors;
            grpc.Interceptors.Add<CallInterceptor>(settings.Grpc);
            grpc.CompressionProviders = [new GzipRequests()];
        }).AddJsonTranscoding();
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcSwagger();
        builder.Services.AddSwaggerGen(swagger => swagger.SwaggerDoc(OpenApiDocument, new() { Title = "SlidePlugin", Version = "v1" }));
        UnparsableRequests.Replace(builder.Services);
        if (settings.WebOrigins.Count > 0)
        {
            // Browsers read grpc-status/grpc-message of gRPC-Web answers only when they are exposed.
            builder.Services.AddCors(cors => cors.AddDefaultPolicy(policy => policy.WithOrigins([.. settings.WebOrigins]).AllowAnyHeader().AllowAnyMethod()
                .WithExposedHeaders("grpc-status", "grpc-message", "grpc-encoding", "grpc-accept-encoding")));
        }
        registry.Register(builder.Services);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxConcurrentConnections = connections.KestrelLimit;
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Limits.MinRequestBodyDataRate = null;
            kestrel.Limits.MinResponseDataRate = null;
            // Larger HTTP/2 windows: a 64 KiB message fits in flight several times over.
            kestrel.Limits.Http2.InitialConnectionWindowSize = 4 * 1024 * 1024;
            kestrel.Limits.Http2.InitialStreamWindowSize = 2 * 1024 * 1024;
            listen(kestrel);
        });

        WebApplication app = builder.Build();
        app.UseRouting();
        if (settings.WebOrigins.Count > 0)
        {
            app.UseCors();
        }

        app.UseGrpcWeb(new GrpcWebOptions { DefaultEnabled = true });
        app.UseSwagger(swagger => swagger.RouteTemplate = "{documentName}.json");
        registry.Map(app);
        app.MapGrpcReflectionService();
        ViewerFiles.Map(app);

        var server = new SidecarServer(app, health, settings, graceOver);
        IHostApplicationLifetime lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        lifetime.ApplicationStopping.Register(() =>
        {
            health.EnterShutdown();
            graceOver.CancelAfter(settings.ShutdownGrace);
        });
        return server;
    }

    /// <summary>Starts listening.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await _app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            // Kestrel's bind failures: address in use (IOException around a SocketException), not an address of this machine.
            throw new ServerConfigurationException($"Cannot listen on {Settings.UnixSocket ?? Settings.Listen}: {e.InnerException?.Message ?? e.Message}");
        }

        if (Settings.UnixSocket is { } socketPath && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    /// <summary>Runs until SIGINT/SIGTERM, then shuts down gracefully.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    /// <summary>Stops gracefully: health turns NOT_SERVING, new connections are refused, running calls get the grace period.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => _app.StopAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync().ConfigureAwait(false);
        _graceOver.Dispose();
    }

    private static Action<KestrelServerOptions> ConfigureListening(ServerSettings settings, ConnectionBudget connections)
    {
        X509Certificate2? certificate = LoadCertificate(settings);
        void Configure(ListenOptions options)
        {
            options.Use(connections.Middleware);
            if (certificate is not null)
            {
                // ALPN picks the protocol; HTTP/1.1 clients reach the endpoint and get 426 there.
                options.Protocols = HttpProtocols.Http1AndHttp2;
                options.UseHttps(certificate);
            }
            else
            {
                // Cleartext: HTTP/2 with prior knowledge only; HTTP/1.x gets 426 from the connection middleware.
                options.Protocols = HttpProtocols.Http2;
                options.Use(Http1Rejection.Middleware);
            }
        }

        Action<KestrelServerOptions> web = _ => { };
        if (settings.WebListen is { } webListen)
        {
            IPEndPoint webEndpoint = ParseListen(webListen, "--web-listen");
            RequireLoopbackOrToken(settings, webEndpoint, webListen);
            // HTTP/1.1 (browsers' gRPC-Web, scripts' JSON) and HTTP/2 for those who want it; no 426 sniffing here.
            web = kestrel => kestrel.Listen(webEndpoint, options =>
            {
                options.Use(connections.Middleware);
                options.Use(ViewerFiles.MarkWebConnections);
                options.Protocols = HttpProtocols.Http1AndHttp2;
                if (certificate is not null)
                {
                    options.UseHttps(certificate);
                }
            });
        }

        if (settings.UnixSocket is { } socketPath)
        {
            RemoveStaleSocket(socketPath);
            return kestrel =>
            {
                kestrel.ListenUnixSocket(socketPath, Configure);
                web(kestrel);
            };
        }

        IPEndPoint endpoint = ParseListen(settings.Listen, "--listen");
        RequireLoopbackOrToken(settings, endpoint, settings.Listen);
        return kestrel =>
        {
            kestrel.Listen(endpoint, Configure);
            web(kestrel);
        };
    }

    private static void RequireLoopbackOrToken(ServerSettings settings, IPEndPoint endpoint, string address)
    {
        if (!IPAddress.IsLoopback(endpoint.Address) && string.IsNullOrWhiteSpace(settings.Grpc.AuthToken))
        {
            throw new ServerConfigurationException(
                $"Listening on {address} exposes slides beyond this machine: give --auth-token (clients then send 'authorization: Bearer <token>'), " +
                $"or listen on a loopback address such as {ServerSettings.DefaultListen}.");
        }
    }

    private static IPEndPoint ParseListen(string listen, string option)
    {
        string text = listen.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase) ? "127.0.0.1" + listen["localhost".Length..] : listen;
        if (!IPEndPoint.TryParse(text, out IPEndPoint? endpoint) || !listen.Contains(':', StringComparison.Ordinal))
        {
            throw new ServerConfigurationException($"{option} '{listen}' is not HOST:PORT (e.g. 127.0.0.1:50051, [::1]:50051, localhost:50051).");
        }

        // [::ffff:127.0.0.1] is 127.0.0.1 written as IPv6: listen on it as such (a dual-stack bind of it fails).
        return endpoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endpoint.Address.MapToIPv4(), endpoint.Port) : endpoint;
    }

    private static X509Certificate2? LoadCertificate(ServerSettings settings)
    {
        if (settings.TlsCertificateFile is null && settings.TlsKeyFile is null)
        {
            return null;
        }

        if (settings.TlsCertificateFile is null || settings.TlsKeyFile is null)
        {
            throw new ServerConfigurationException("TLS needs both --tls-cert and --tls-key.");
        }

        try
        {
            return X509Certificate2.CreateFromPemFile(settings.TlsCertificateFile, settings.TlsKeyFile);
        }
        catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
        {
            throw new ServerConfigurationException($"Cannot load the TLS certificate '{settings.TlsCertificateFile}' with key '{settings.TlsKeyFile}': {e.Message}", e);
        }
    }

    private static void RemoveStaleSocket(string socketPath)
    {
        if (Directory.Exists(socketPath))
        {
            throw new ServerConfigurationException($"--unix '{socketPath}' is a directory, not a socket; give a file path for the socket.");
        }

        if (!File.Exists(socketPath))
        {
            return;
        }

        if (!IsSocket(socketPath))
        {
            throw new ServerConfigurationException($"--unix '{socketPath}' exists and is not a socket; refusing to delete it.");
        }

        File.Delete(socketPath);
    }

    private static bool IsSocket(string path)
    {
        try
        {
            // A socket file cannot be opened for reading as a regular file.
            using FileStream stream = File.OpenRead(path);
            return false;
        }
        catch (IOException)
        {
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return false; // a directory, or a file we may not read: not ours to delete
        }
    }
}
