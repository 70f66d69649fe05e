using SlidePlugin.Grpc.Tests.Interop;

namespace SlidePlugin.Grpc.Tests.Client;

/// <summary>Our client against our server, through loopback h2c.</summary>
public sealed class OurClientTests(InteropServerFixture server) : ClientConformanceTests, IClassFixture<InteropServerFixture>, IDisposable
{
    private readonly GrpcChannel _channel = SlidePluginChannel.ForAddress(server.Address);

    private protected override GrpcChannel Channel => _channel;

    public void Dispose() => _channel.Dispose();

    [Fact]
    public async Task ClientStreaming_FortyMiB_NoRequestBodyLimit()
    {
        // Kestrel caps request bodies at 30 MB by default; a stream must not be capped.
        const int Chunks = 640;
        var payload = Google.Protobuf.ByteString.CopyFrom(new byte[64 * 1024]);
        using var call = _channel.AsyncClientStreamingCall(InteropMethods.StreamIn, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(60)));
        for (int i = 0; i < Chunks; i++)
        {
            await call.RequestStream.WriteAsync(new Testing.V1.Chunk { Index = i, Payload = payload });
        }

        await call.RequestStream.CompleteAsync();
        Testing.V1.StreamInResponse response = await call.ResponseAsync;

        Assert.Equal(Chunks, response.Count);
        Assert.Equal(Chunks * 64L * 1024, response.TotalBytes);
    }
}
