using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using SlidePlugin.Grpc.Tests.Interop;
using SlidePlugin.Sidecar.Grpc;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Testing.V1;

namespace SlidePlugin.Grpc.Tests.Server;

/// <summary>The server's answers to raw HTTP/2 requests: what real clients never send, and what they check.</summary>
public sealed class ServerProtocolTests(InteropServerFixture server) : IClassFixture<InteropServerFixture>, IDisposable
{
    private const string EchoPath = "/slideplugin.testing.v1.InteropTestService/Echo";

    private readonly HttpClient _http = new(new SocketsHttpHandler()) { BaseAddress = new Uri(server.Address) };

    public void Dispose() => _http.Dispose();

    private async Task<(HttpResponseMessage Response, byte[] Body)> PostAsync(string path, HttpContent content, string? encoding = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = content,
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.TE.ParseAdd("trailers");
        if (encoding is not null)
        {
            request.Headers.Add("grpc-encoding", encoding);
        }

        HttpResponseMessage response = await _http.SendAsync(request);
        byte[] body = await response.Content.ReadAsByteArrayAsync(); // reading to the end fills the trailers
        return (response, body);
    }

    private static ByteArrayContent Grpc(byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        return content;
    }

    private static string? Header(HttpHeaders headers, string name) => headers.TryGetValues(name, out var values) ? values.First() : null;

    [Fact]
    public async Task Unary_Ok_StatusInTrailersAfterOneMessage()
    {
        (HttpResponseMessage response, byte[] body) = await PostAsync(EchoPath, Grpc(GrpcFraming.FrameMessage(new EchoRequest { Message = "x" })));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/grpc", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(GrpcFraming.FrameMessage(new EchoResponse { Message = "x" }), body);
        Assert.Null(Header(response.Headers, "grpc-status"));
        Assert.Equal("0", Header(response.TrailingHeaders, "grpc-status"));
    }

    [Fact]
    public async Task UnknownMethod_TrailersOnly_StatusInHeadersAndNoBody()
    {
        (HttpResponseMessage response, byte[] body) = await PostAsync("/slideplugin.testing.v1.InteropTestService/Nope", Grpc([0, 0, 0, 0, 0]));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("12", Header(response.Headers, "grpc-status"));
        Assert.Empty(body);
        Assert.Empty(response.TrailingHeaders);
    }

    [Fact]
    public async Task ContentType_NotGrpc_Http415()
    {
        (HttpResponseMessage response, _) = await PostAsync(EchoPath, new StringContent("{}", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Fact]
    public async Task Http11_OnCleartextPort_Http426()
    {
        var uri = new Uri(server.Address);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(uri.Host, uri.Port);
        NetworkStream stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST {EchoPath} HTTP/1.1\r\nHost: {uri.Authority}\r\nContent-Type: application/grpc\r\nContent-Length: 0\r\n\r\n"));
        using var reader = new StreamReader(stream, Encoding.ASCII);

        string? statusLine = await reader.ReadLineAsync();

        Assert.Equal("HTTP/1.1 426 Upgrade Required", statusLine);
    }

    [Fact]
    public async Task Connection_SendingTwoBytesThenNothing_ClosedAfterThePrefaceTimeout()
    {
        var uri = new Uri(server.Address);
        var sockets = new List<TcpClient>();
        try
        {
            for (int i = 0; i < 20; i++)
            {
                var tcp = new TcpClient();
                sockets.Add(tcp);
                await tcp.ConnectAsync(uri.Host, uri.Port);
                await tcp.GetStream().WriteAsync("PR"u8.ToArray());
            }

            // Each read ends when the server closes the socket (0 bytes or a reset), well within timeout + slack.
            var closed = sockets.Select(async tcp =>
            {
                try
                {
                    return await tcp.GetStream().ReadAsync(new byte[16]).AsTask().WaitAsync(Http1Rejection.PrefaceTimeout + TimeSpan.FromSeconds(10));
                }
                catch (IOException)
                {
                    return 0;
                }
            });

            Assert.All(await Task.WhenAll(closed), read => Assert.Equal(0, read));
        }
        finally
        {
            sockets.ForEach(s => s.Dispose());
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public async Task Unary_ZeroOrTwoRequestMessages_Internal(int messages)
    {
        byte[] one = GrpcFraming.FrameMessage(new EchoRequest { Message = "x" });
        byte[] body = messages == 0 ? [] : [.. one, .. one];

        (HttpResponseMessage response, _) = await PostAsync(EchoPath, Grpc(body));

        Assert.Equal("13", Header(response.Headers, "grpc-status") ?? Header(response.TrailingHeaders, "grpc-status"));
    }

    [Fact]
    public async Task Unary_MessageThatDoesNotParse_InternalNamingTheMessageAndServerKeepsServing()
    {
        byte[] garbage = [0x0a, 0x0b, (byte)'n', (byte)'o']; // field 1, length 11, then only 2 bytes
        byte[] framed = [0, 0, 0, 0, (byte)garbage.Length, .. garbage];

        (HttpResponseMessage response, _) = await PostAsync(EchoPath, Grpc(framed));
        (HttpResponseMessage next, _) = await PostAsync(EchoPath, Grpc(GrpcFraming.FrameMessage(new EchoRequest())));

        Assert.Equal("13", Header(response.Headers, "grpc-status") ?? Header(response.TrailingHeaders, "grpc-status"));
        Assert.Contains("not a valid EchoRequest message", Uri.UnescapeDataString(Header(response.Headers, "grpc-message") ?? Header(response.TrailingHeaders, "grpc-message") ?? ""), StringComparison.Ordinal);
        Assert.Equal("0", Header(next.TrailingHeaders, "grpc-status"));
    }

    [Fact]
    public async Task CompressedFlag_WithoutGrpcEncoding_Internal()
    {
        byte[] framed = GrpcFraming.FrameMessage(new EchoRequest { Message = "x" });
        framed[0] = 1;

        (HttpResponseMessage response, _) = await PostAsync(EchoPath, Grpc(framed));

        Assert.Equal("13", Header(response.Headers, "grpc-status"));
    }

    [Fact]
    public async Task GzipRequest_WithGrpcEncoding_Accepted()
    {
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            new EchoRequest { Message = "zipped" }.WriteTo(gzip);
        }

        byte[] payload = compressed.ToArray();
        byte[] framed = [1, 0, 0, (byte)(payload.Length >> 8), (byte)payload.Length, .. payload];

        (HttpResponseMessage response, byte[] body) = await PostAsync(EchoPath, Grpc(framed), encoding: "gzip");

        Assert.Equal("0", Header(response.TrailingHeaders, "grpc-status"));
        Assert.Equal(GrpcFraming.FrameMessage(new EchoResponse { Message = "zipped" }), body);
    }

    [Fact]
    public async Task GzipRequest_CorruptBody_InternalNotUnknown()
    {
        byte[] payload = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad];
        byte[] framed = [1, 0, 0, 0, (byte)payload.Length, .. payload];

        (HttpResponseMessage response, _) = await PostAsync(EchoPath, Grpc(framed), encoding: "gzip");

        Assert.Equal("13", Header(response.TrailingHeaders, "grpc-status") ?? Header(response.Headers, "grpc-status")); // INTERNAL, trailers-only or not
    }

    [Fact]
    public async Task RequestHeader_SplitAcrossDataFrames_Reassembled()
    {
        byte[] framed = GrpcFraming.FrameMessage(new EchoRequest { Message = "split" });
        var content = new ChunkedContent([framed[..2], framed[2..4], framed[4..7], framed[7..]]);

        (HttpResponseMessage response, byte[] body) = await PostAsync(EchoPath, content);

        Assert.Equal("0", Header(response.TrailingHeaders, "grpc-status"));
        Assert.Equal(GrpcFraming.FrameMessage(new EchoResponse { Message = "split" }), body);
    }

    [Theory]
    [InlineData("300m", 300)]
    [InlineData("300000u", 300)]
    [InlineData("99999999n", 100)] // eight digits at most
    [InlineData("1S", 1000)]
    public async Task GrpcTimeout_ClientNeverCancels_ServerEndsWithDeadlineExceededAndHandlerTokenFires(string timeout, int milliseconds)
    {
        string id = $"raw-deadline-{Guid.NewGuid():N}";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/slideplugin.testing.v1.InteropTestService/WaitForCancel")
        {
            Content = Grpc(GrpcFraming.FrameMessage(new WaitForCancelRequest { Id = id })),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.TE.ParseAdd("trailers");
        request.Headers.Add("grpc-timeout", timeout);
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();

        using var noLongerThan = new CancellationTokenSource(TimeSpan.FromSeconds(20)); // a missed deadline fails, never hangs
        using HttpResponseMessage response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, noLongerThan.Token);
        byte[] body = await response.Content.ReadAsByteArrayAsync(noLongerThan.Token);

        Assert.InRange(stopwatch.Elapsed, TimeSpan.FromMilliseconds(milliseconds * 0.9), TimeSpan.FromSeconds(10));
        Assert.Equal(GrpcFraming.FrameMessage(new Chunk { Index = 0 }), body);
        Assert.Equal("4", Header(response.TrailingHeaders, "grpc-status"));
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Address);
        GetCancelObservationResponse observed = await Client.ClientConformance.ObserveAsync(channel, id);
        Assert.True(observed.Cancelled);
        Assert.True(observed.DeadlineExceeded);
    }

    [Fact]
    public async Task HandlerThrows_Unknown_WithoutInternalDetail()
    {
        (HttpResponseMessage response, _) = await PostAsync(EchoPath, Grpc(GrpcFraming.FrameMessage(new EchoRequest { StatusCode = -1 })));

        Assert.Equal("2", Header(response.Headers, "grpc-status"));
        Assert.DoesNotContain("internal detail", Header(response.Headers, "grpc-message") ?? string.Empty, StringComparison.Ordinal);
        // ... and the server keeps serving.
        (HttpResponseMessage next, _) = await PostAsync(EchoPath, Grpc(GrpcFraming.FrameMessage(new EchoRequest())));
        Assert.Equal("0", Header(next.TrailingHeaders, "grpc-status"));
    }

    [Fact]
    public async Task HandlerThrows_DetailedErrorsOn_MessageIncluded()
    {
        await using SidecarServer detailed = await TestServers.StartAsync(
            new ServerSettings { Listen = "127.0.0.1:0", Grpc = new GrpcServerOptions { EnableDetailedErrors = true } });
        using GrpcChannel channel = SlidePluginChannel.ForAddress(detailed.Addresses.Single());

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await channel.AsyncUnaryCall(InteropMethods.Echo, new EchoRequest { StatusCode = -1 }, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10))));

        Assert.Equal(StatusCode.Unknown, error.StatusCode);
        Assert.Contains("InvalidOperationException: internal detail that must not leak", error.Status.Detail, StringComparison.Ordinal);
        await detailed.StopAsync();
    }

    /// <summary>A request body sent in pieces, each flushed on its own, so each lands in its own DATA frame.</summary>
    private sealed class ChunkedContent : HttpContent
    {
        private readonly byte[][] _pieces;

        public ChunkedContent(byte[][] pieces)
        {
            _pieces = pieces;
            Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            foreach (byte[] piece in _pieces)
            {
                await stream.WriteAsync(piece);
                await stream.FlushAsync();
                await Task.Delay(20);
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
    }
}
