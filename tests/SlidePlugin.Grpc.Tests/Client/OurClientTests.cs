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
}
