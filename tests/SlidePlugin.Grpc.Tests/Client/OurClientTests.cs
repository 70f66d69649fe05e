using SlidePlugin.Grpc.Tests.Interop;

namespace SlidePlugin.Grpc.Tests.Client;

/// <summary>Our client against our server, through loopback h2c.</summary>
public sealed class OurClientTests(InteropServerFixture server) : IClassFixture<InteropServerFixture>, IDisposable
{
    private readonly GrpcChannel _channel = GrpcChannel.ForAddress(server.Address);

    public void Dispose() => _channel.Dispose();

    [Fact] public Task Unary_Echo_RoundTrips() => ClientConformance.UnaryEchoAsync(_channel);
    [Fact] public Task Unary_ErrorStatus_RpcExceptionWithDecodedMessage() => ClientConformance.ErrorStatusAsync(_channel);
    [Fact] public Task ServerStreaming_TenThousand_InOrder() => ClientConformance.ServerStreamingAsync(_channel);
    [Fact] public Task ClientStreaming_TenThousand_Counted() => ClientConformance.ClientStreamingAsync(_channel);
    [Fact] public Task Duplex_TenThousand_Echoed() => ClientConformance.DuplexAsync(_channel);
    [Fact] public Task Deadline_Expires_DeadlineExceededAndServerObserves() => ClientConformance.DeadlineExceededAsync(_channel);
    [Fact] public Task Cancel_MidStream_CancelledAndServerObserves() => ClientConformance.CancelMidStreamAsync(_channel);
    [Fact] public Task Request_OverFourMiB_ResourceExhausted() => ClientConformance.OversizeRequestAsync(_channel);
    [Fact] public Task Route_UnknownMethod_Unimplemented() => ClientConformance.UnknownMethodAsync(_channel);
    [Fact] public Task Metadata_HeadersAndTrailers_RoundTrip() => ClientConformance.MetadataRoundTripAsync(_channel);

    [Fact]
    public async Task ClientStreaming_FortyMiB_NoRequestBodyLimit()
    {
        // Kestrel caps request bodies at 30 MB by default; a stream must not be capped.
        const int Chunks = 640;
        var payload = Google.Protobuf.ByteString.CopyFrom(new byte[64 * 1024]);
        using var call = _channel.AsyncClientStreamingCall(InteropMethods.StreamIn, new CallOptions(Deadline: DateTime.UtcNow.AddSeconds(60)));
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
