using Google.Protobuf;
using SlidePlugin.Grpc.Tests.Interop;
using SlidePlugin.Testing.V1;

namespace SlidePlugin.Grpc.Tests.Client;

/// <summary>
/// The cases our client must pass against any conforming gRPC server, as tests: a derived class says
/// which server (ours, or Python grpcio for reverse interop) by giving the channel.
/// </summary>
public abstract class ClientConformanceTests
{
    private protected abstract GrpcChannel Channel { get; }

    [Fact] public Task Unary_Echo_RoundTrips() => ClientConformance.UnaryEchoAsync(Channel);
    [Fact] public Task Unary_ErrorStatus_RpcExceptionWithDecodedMessage() => ClientConformance.ErrorStatusAsync(Channel);
    [Fact] public Task ServerStreaming_TenThousand_InOrder() => ClientConformance.ServerStreamingAsync(Channel);
    [Fact] public Task ClientStreaming_TenThousand_Counted() => ClientConformance.ClientStreamingAsync(Channel);
    [Fact] public Task Duplex_TenThousand_Echoed() => ClientConformance.DuplexAsync(Channel);
    [Fact] public Task Deadline_Expires_DeadlineExceededAndServerObserves() => ClientConformance.DeadlineExceededAsync(Channel);
    [Fact] public Task Cancel_MidStream_CancelledAndServerObserves() => ClientConformance.CancelMidStreamAsync(Channel);
    [Fact] public Task Request_OverFourMiB_ResourceExhausted() => ClientConformance.OversizeRequestAsync(Channel);
    [Fact] public Task Route_UnknownMethod_Unimplemented() => ClientConformance.UnknownMethodAsync(Channel);
    [Fact] public Task Metadata_HeadersAndTrailers_RoundTrip() => ClientConformance.MetadataRoundTripAsync(Channel);
}

/// <summary>The cases behind <see cref="ClientConformanceTests"/>; each asserts what the client observed.</summary>
internal static class ClientConformance
{
    public const int StreamCount = 10_000;

    public static async Task UnaryEchoAsync(GrpcChannel channel)
    {
        EchoResponse response = await channel.AsyncUnaryCall(InteropMethods.Echo,
            new EchoRequest { Message = "héllo", Payload = ByteString.CopyFrom(0, 1, 254, 255) }, Deadline(10));

        Assert.Equal("héllo", response.Message);
        Assert.Equal(new byte[] { 0, 1, 254, 255 }, response.Payload.ToByteArray());
    }

    public static async Task ErrorStatusAsync(GrpcChannel channel)
    {
        var error = await Assert.ThrowsAsync<RpcException>(async () => await channel.AsyncUnaryCall(InteropMethods.Echo,
            new EchoRequest { StatusCode = (int)StatusCode.NotFound, StatusMessage = "slide 'ü' not found: 100% gone\n" }, Deadline(10)));

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Equal("slide 'ü' not found: 100% gone\n", error.Status.Detail);
    }

    public static async Task ServerStreamingAsync(GrpcChannel channel)
    {
        using AsyncServerStreamingCall<Chunk> call = channel.AsyncServerStreamingCall(InteropMethods.StreamOut,
            new StreamOutRequest { Count = StreamCount, Size = 32 }, Deadline(60));
        int expected = 0;
        await foreach (Chunk chunk in call.ResponseStream.ReadAllAsync())
        {
            Assert.Equal(expected++, chunk.Index);
        }

        Assert.Equal(StreamCount, expected);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    public static async Task ClientStreamingAsync(GrpcChannel channel)
    {
        using AsyncClientStreamingCall<Chunk, StreamInResponse> call = channel.AsyncClientStreamingCall(InteropMethods.StreamIn, Deadline(60));
        for (int i = 0; i < StreamCount; i++)
        {
            await call.RequestStream.WriteAsync(new Chunk { Index = i, Payload = ByteString.CopyFrom(new byte[32]) });
        }

        await call.RequestStream.CompleteAsync();
        StreamInResponse response = await call.ResponseAsync;

        Assert.Equal(StreamCount, response.Count);
        Assert.Equal(StreamCount * 32L, response.TotalBytes);
    }

    public static async Task DuplexAsync(GrpcChannel channel)
    {
        using AsyncDuplexStreamingCall<Chunk, Chunk> call = channel.AsyncDuplexStreamingCall(InteropMethods.Duplex, Deadline(60));
        Task<int> reader = Task.Run(async () =>
        {
            int expected = 0;
            await foreach (Chunk chunk in call.ResponseStream.ReadAllAsync())
            {
                Assert.Equal(expected++, chunk.Index);
            }

            return expected;
        });
        for (int i = 0; i < StreamCount; i++)
        {
            await call.RequestStream.WriteAsync(new Chunk { Index = i });
        }

        await call.RequestStream.CompleteAsync();

        Assert.Equal(StreamCount, await reader);
    }

    public static async Task DeadlineExceededAsync(GrpcChannel channel)
    {
        string id = $"csharp-deadline-{Guid.NewGuid():N}";
        using AsyncServerStreamingCall<Chunk> call = channel.AsyncServerStreamingCall(InteropMethods.WaitForCancel,
            new WaitForCancelRequest { Id = id }, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(2))); // room for a loaded 2-core machine
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));

        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        GetCancelObservationResponse observed = await ObserveAsync(channel, id);
        Assert.True(observed.Cancelled); // by the server's timer or by our reset at the same deadline: a race either way

    }

    public static async Task CancelMidStreamAsync(GrpcChannel channel)
    {
        string id = $"csharp-cancel-{Guid.NewGuid():N}";
        using var cts = new CancellationTokenSource();
        using AsyncServerStreamingCall<Chunk> call = channel.AsyncServerStreamingCall(InteropMethods.WaitForCancel,
            new WaitForCancelRequest { Id = id }, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: cts.Token));
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));

        await cts.CancelAsync();
        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.Cancelled, error.StatusCode);
        GetCancelObservationResponse observed = await ObserveAsync(channel, id);
        Assert.True(observed.Cancelled);
        Assert.False(observed.DeadlineExceeded);
    }

    public static async Task OversizeRequestAsync(GrpcChannel channel)
    {
        var request = new EchoRequest { Payload = ByteString.CopyFrom(new byte[(4 * 1024 * 1024) + 1 - 1 - 4]) };
        Assert.Equal((4 * 1024 * 1024) + 1, request.CalculateSize());

        var error = await Assert.ThrowsAsync<RpcException>(async () => await channel.AsyncUnaryCall(InteropMethods.Echo, request, Deadline(30)));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        await UnaryEchoAsync(channel); // the server keeps serving
    }

    public static async Task UnknownMethodAsync(GrpcChannel channel)
    {
        var error = await Assert.ThrowsAsync<RpcException>(async () => await channel.AsyncUnaryCall(InteropMethods.UnknownMethod, new EchoRequest(), Deadline(10)));

        Assert.Equal(StatusCode.Unimplemented, error.StatusCode);
    }

    public static async Task MetadataRoundTripAsync(GrpcChannel channel)
    {
        var headers = new Metadata { { "x-echo-text", "plain value" }, { "x-echo-bin", new byte[] { 0, 1, 255 } } };
        using AsyncUnaryCall<EchoResponse> call = channel.AsyncUnaryCall(InteropMethods.Echo, new EchoRequest { Message = "md" },
            new CallOptions(headers, DateTime.UtcNow.AddSeconds(10)));
        await call.ResponseAsync;

        Metadata responseHeaders = await call.ResponseHeadersAsync;
        Assert.Equal("plain value", responseHeaders.GetValue("x-echo-text"));
        Assert.Equal(new byte[] { 0, 1, 255 }, responseHeaders.GetValueBytes("x-echo-bin"));
        Assert.Equal("plain value", call.GetTrailers().GetValue("x-trailer-text"));
        Assert.Equal(new byte[] { 0, 1, 255 }, call.GetTrailers().GetValueBytes("x-trailer-bin"));
    }

    private static CallOptions Deadline(int seconds) => new(deadline: DateTime.UtcNow.AddSeconds(seconds));

    /// <summary>What the server recorded for a WaitForCancel call; polls, since the handler records it asynchronously.</summary>
    public static async Task<GetCancelObservationResponse> ObserveAsync(GrpcChannel channel, string id)
    {
        GetCancelObservationResponse observed = new();
        for (int attempt = 0; attempt < 100 && !observed.Cancelled; attempt++)
        {
            if (attempt > 0)
            {
                await Task.Delay(50);
            }

            observed = await channel.AsyncUnaryCall(InteropMethods.GetCancelObservation, new GetCancelObservationRequest { Id = id }, Deadline(10));
        }

        return observed;
    }
}
