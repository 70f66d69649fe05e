using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Health.V1;
using SlidePlugin.Grpc.Tests.Interop;
using SlidePlugin.Sidecar.Grpc;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Testing.V1;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace SlidePlugin.Grpc.Tests.Server;

/// <summary>How the server listens and stops: Unix socket, TLS, tokens, shutdown.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class ServerHostingTests
{
    private static readonly Method<HealthCheckRequest, HealthCheckResponse> HealthWatch =
        Methods.FromDescriptor<HealthCheckRequest, HealthCheckResponse>(HealthReflection.Descriptor.Services[0].FindMethodByName("Watch"));

    private static readonly Method<HealthCheckRequest, HealthCheckResponse> HealthCheck =
        Methods.FromDescriptor<HealthCheckRequest, HealthCheckResponse>(HealthReflection.Descriptor.Services[0].FindMethodByName("Check"));

    private static CallOptions Deadline(int seconds = 10) => new(deadline: DateTime.UtcNow.AddSeconds(seconds));

    [Fact]
    public async Task UnixSocket_StaleFileThere_RemovedAndServedWithMode0600()
    {
        string socketPath = Path.Combine(Path.GetTempPath(), $"sp-{Guid.NewGuid():N}.sock");
        using (var stale = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified))
        {
            stale.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath)); // left behind, as by a crashed server
        }

        await using SidecarServer server = await TestServers.StartAsync(new ServerSettings { UnixSocket = socketPath });
        using GrpcChannel channel = SlidePluginChannel.ForAddress("unix://" + socketPath);

        EchoResponse response = await channel.AsyncUnaryCall(InteropMethods.Echo, new EchoRequest { Message = "over unix" }, Deadline());

        Assert.Equal("over unix", response.Message);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socketPath));
        await server.StopAsync();
    }

    [Fact]
    public void UnixSocket_PathIsADirectory_RefusesWithMessage()
    {
        string path = Directory.CreateTempSubdirectory("slideplugin-not-a-socket").FullName;

        var error = Assert.Throws<ServerConfigurationException>(() =>
            SidecarServer.Create(new ServerSettings { UnixSocket = path }, Serilog.Core.Logger.None, _ => { }));

        Assert.Contains("not a socket", error.Message, StringComparison.Ordinal);
        Assert.True(Directory.Exists(path));
        Directory.Delete(path);
    }

    [Fact]
    public void UnixSocket_PathIsARegularFile_RefusesToDeleteIt()
    {
        string path = Path.GetTempFileName();
        try
        {
            var error = Assert.Throws<ServerConfigurationException>(() =>
                SidecarServer.Create(new ServerSettings { UnixSocket = path }, Serilog.Core.Logger.None, _ => { }));

            Assert.Contains("not a socket", error.Message, StringComparison.Ordinal);
            Assert.True(File.Exists(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Tls_SelfSignedCertificate_ClientTrustingItCalls()
    {
        (string certFile, string keyFile, X509Certificate2 certificate) = WriteSelfSignedCertificate();
        await using SidecarServer server = await TestServers.StartAsync(
            new ServerSettings { Listen = "127.0.0.1:0", TlsCertificateFile = certFile, TlsKeyFile = keyFile });
        string address = server.Addresses.Single().Replace("http://", "https://", StringComparison.Ordinal);
        using GrpcChannel channel = SlidePluginChannel.ForAddress(address, new SlidePluginClientOptions
        {
            ServerCertificateValidation = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == certificate.GetCertHashString(),
        });

        EchoResponse response = await channel.AsyncUnaryCall(InteropMethods.Echo, new EchoRequest { Message = "over tls" }, Deadline());

        Assert.Equal("over tls", response.Message);
        await server.StopAsync();
        Directory.Delete(Path.GetDirectoryName(certFile)!, recursive: true); // the private key does not outlive the test
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")] // a blank token protects nothing
    public void Listen_NonLoopbackWithoutToken_RefusesWithMessageNamingAuthToken(string? token)
    {
        var error = Assert.Throws<ServerConfigurationException>(() =>
            SidecarServer.Create(new ServerSettings { Listen = "0.0.0.0:0", Grpc = new GrpcServerOptions { AuthToken = token } }, Serilog.Core.Logger.None, _ => { }));

        Assert.Contains("--auth-token", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connections_AtTheLimit_HealthStillAnswersOtherCallsRefusedUntilOneCloses()
    {
        await using SidecarServer server = await TestServers.StartAsync(new ServerSettings { Listen = "127.0.0.1:0", MaxConnections = 3 });
        string address = server.Addresses.Single();
        var held = new List<GrpcChannel>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var channel = SlidePluginChannel.ForAddress(address); // one HTTP/2 connection each, kept open
                held.Add(channel);
                await channel.AsyncUnaryCall(InteropMethods.Echo, new EchoRequest { Message = "hold" }, Deadline());
            }

            using (GrpcChannel probe = SlidePluginChannel.ForAddress(address))
            {
                HealthCheckResponse health = await probe.AsyncUnaryCall(HealthCheck, new HealthCheckRequest(), Deadline());
                var refused = await Assert.ThrowsAsync<RpcException>(async () =>
                    await probe.AsyncUnaryCall(InteropMethods.Echo, new EchoRequest(), Deadline()));

                Assert.Equal(ServingStatus.Serving, health.Status);
                Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
                Assert.Contains("3 connections open, its limit; this connection is kept for health checks", refused.Status.Detail, StringComparison.Ordinal);
            }

            // An idle socket in the reserve is closed well before the preface timeout would close it.
            using (var idle = new System.Net.Sockets.TcpClient())
            {
                var uri = new Uri(address);
                await idle.ConnectAsync(uri.Host, uri.Port);
                Task<int> read = idle.GetStream().ReadAsync(new byte[16]).AsTask();
                Assert.Same(read, await Task.WhenAny(read, Task.Delay(Http1Rejection.PrefaceTimeout - TimeSpan.FromSeconds(1))));
            }

            held[0].Dispose(); // a served connection closes: new connections serve every call again
            string? echoed = null;
            for (int attempt = 0; attempt < 50 && echoed is null; attempt++)
            {
                using GrpcChannel next = SlidePluginChannel.ForAddress(address);
                try
                {
                    echoed = (await next.AsyncUnaryCall(InteropMethods.Echo, new EchoRequest { Message = "served" }, Deadline())).Message;
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted)
                {
                    await Task.Delay(100); // the server has not seen the close yet
                }
            }

            Assert.Equal("served", echoed);
        }
        finally
        {
            held.ForEach(c => c.Dispose());
            await server.StopAsync();
        }
    }

    [Fact]
    public async Task Listen_Ipv4MappedLoopback_ServesAsLoopback()
    {
        await using SidecarServer server = await TestServers.StartAsync(new ServerSettings { Listen = "[::ffff:127.0.0.1]:0" });
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());

        Assert.Equal("mapped", (await channel.AsyncUnaryCall(InteropMethods.Echo, new EchoRequest { Message = "mapped" }, Deadline())).Message);
        await server.StopAsync();
    }

    [Fact]
    public async Task Listen_AddressNotOfThisMachine_ConfigurationErrorNamingIt()
    {
        // 192.0.2.1 (TEST-NET-1) is never an address of this machine: the bind fails, nothing is sent anywhere.
        await using SidecarServer server = SidecarServer.Create(
            new ServerSettings { Listen = "192.0.2.1:0", Grpc = new GrpcServerOptions { AuthToken = "t" } }, Serilog.Core.Logger.None, _ => { });

        var error = await Assert.ThrowsAsync<ServerConfigurationException>(() => server.StartAsync());

        Assert.Contains("Cannot listen on 192.0.2.1:0", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not-an-address")]
    [InlineData("127.0.0.1")]
    public void Listen_Malformed_RefusesWithMessage(string listen)
    {
        var error = Assert.Throws<ServerConfigurationException>(() =>
            SidecarServer.Create(new ServerSettings { Listen = listen }, Serilog.Core.Logger.None, _ => { }));

        Assert.Contains("HOST:PORT", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AuthToken_MissingWrongOrRight_UnauthenticatedUnlessRight()
    {
        await using SidecarServer server = await TestServers.StartAsync(
            new ServerSettings { Listen = "127.0.0.1:0", Grpc = new GrpcServerOptions { AuthToken = "s3cret" } });
        string address = server.Addresses.Single();

        foreach (string? token in new[] { null, "wrong" })
        {
            using GrpcChannel channel = SlidePluginChannel.ForAddress(address, new SlidePluginClientOptions { BearerToken = token });
            var error = await Assert.ThrowsAsync<RpcException>(async () =>
                await channel.AsyncUnaryCall(InteropMethods.Echo, new EchoRequest(), Deadline()));
            Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
            // Health and reflection too: they list what the server offers.
            var health = await Assert.ThrowsAsync<RpcException>(async () =>
                await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest(), Deadline()));
            Assert.Equal(StatusCode.Unauthenticated, health.StatusCode);
            using var reflection = new global::Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo(Deadline());
            // Refused when the call starts, before any request: read the answer without writing (a write racing the refusal
            // may see the stream torn down as CANCELLED instead of the status).
            var listed = await Assert.ThrowsAsync<RpcException>(() => reflection.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal(StatusCode.Unauthenticated, listed.StatusCode);
        }

        using GrpcChannel authorized = SlidePluginChannel.ForAddress(address, new SlidePluginClientOptions { BearerToken = "s3cret" });
        Assert.Equal("ok", (await authorized.AsyncUnaryCall(InteropMethods.Echo, new EchoRequest { Message = "ok" }, Deadline())).Message);

        // RFC 6750: the scheme is case-insensitive.
        var lowerCase = new Metadata { { "authorization", "bearer s3cret" } };
        using GrpcChannel plain = SlidePluginChannel.ForAddress(address);
        Assert.Equal("lower", (await plain.AsyncUnaryCall(InteropMethods.Echo, new EchoRequest { Message = "lower" }, new CallOptions(headers: lowerCase, deadline: DateTime.UtcNow.AddSeconds(10)))).Message);
        await server.StopAsync();
    }

    [Fact]
    public async Task Shutdown_WhileCallsRun_HealthTurnsNotServingAndCallsCancelledAfterGrace()
    {
        SidecarServer server = await TestServers.StartAsync(
            new ServerSettings { Listen = "127.0.0.1:0", ShutdownGrace = TimeSpan.FromMilliseconds(500) });
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());
        using AsyncServerStreamingCall<HealthCheckResponse> watch = channel.AsyncServerStreamingCall(HealthWatch, new HealthCheckRequest(), Deadline(30));
        Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(ServingStatus.Serving, watch.ResponseStream.Current.Status);
        using AsyncServerStreamingCall<Chunk> running = channel.AsyncServerStreamingCall(InteropMethods.WaitForCancel,
            new WaitForCancelRequest { Id = "shutdown" }, Deadline(30));
        Assert.True(await running.ResponseStream.MoveNext(CancellationToken.None));

        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        Task stopping = server.StopAsync();

        Assert.True(await watch.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(ServingStatus.NotServing, watch.ResponseStream.Current.Status);
        var error = await Assert.ThrowsAsync<RpcException>(() => running.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Contains(error.StatusCode, new[] { StatusCode.Unavailable, StatusCode.Cancelled });
        await stopping;
        Assert.InRange(stopwatch.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(10));
        await server.DisposeAsync();
    }

    private static (string CertFile, string KeyFile, X509Certificate2 Certificate) WriteSelfSignedCertificate()
    {
        using RSA key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        X509Certificate2 certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        string folder = Directory.CreateTempSubdirectory("slideplugin-tls").FullName;
        string certFile = Path.Combine(folder, "cert.pem");
        string keyFile = Path.Combine(folder, "key.pem");
        File.WriteAllText(certFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        return (certFile, keyFile, certificate);
    }
}
