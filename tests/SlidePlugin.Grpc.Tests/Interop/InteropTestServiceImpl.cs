using System.Collections.Concurrent;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Sidecar.Grpc;
using SlidePlugin.Testing.V1;

namespace SlidePlugin.Grpc.Tests.Interop;

/// <summary>The interop test service, hosted by the sidecar's server layer.</summary>
internal sealed class InteropTestServiceImpl : InteropTestService.InteropTestServiceBase
{
    private const string EchoPrefix = "x-echo-";
    private const string TrailerPrefix = "x-trailer-";

    private readonly ConcurrentDictionary<string, GetCancelObservationResponse> _observations = new();

    public void BindTo(GrpcServiceRegistry registry) => registry.Add(this);

    public override Task<EchoResponse> Echo(EchoRequest request, ServerCallContext context) => EchoAsync(request, context);

    public override Task StreamOut(StreamOutRequest request, IServerStreamWriter<Chunk> responseStream, ServerCallContext context) => StreamOutAsync(request, responseStream, context);

    public override Task<StreamInResponse> StreamIn(IAsyncStreamReader<Chunk> requestStream, ServerCallContext context) => StreamInAsync(requestStream, context);

    public override Task Duplex(IAsyncStreamReader<Chunk> requestStream, IServerStreamWriter<Chunk> responseStream, ServerCallContext context) => DuplexAsync(requestStream, responseStream, context);

    public override Task WaitForCancel(WaitForCancelRequest request, IServerStreamWriter<Chunk> responseStream, ServerCallContext context) => WaitForCancelAsync(request, responseStream, context);

    public override Task<GetCancelObservationResponse> GetCancelObservation(GetCancelObservationRequest request, ServerCallContext context) => GetCancelObservationAsync(request, context);

    private static async Task<EchoResponse> EchoAsync(EchoRequest request, ServerCallContext context)
    {
        // Metadata round trip: x-echo-* comes back as a response header and as an x-trailer-* trailer.
        var headers = new Metadata();
        foreach (Metadata.Entry entry in context.RequestHeaders.Where(e => e.Key.StartsWith(EchoPrefix, StringComparison.Ordinal)))
        {
            string trailerKey = TrailerPrefix + entry.Key[EchoPrefix.Length..];
            headers.Add(entry);
            context.ResponseTrailers.Add(entry.IsBinary ? new Metadata.Entry(trailerKey, entry.ValueBytes) : new Metadata.Entry(trailerKey, entry.Value));
        }

        if (headers.Count > 0)
        {
            await context.WriteResponseHeadersAsync(headers);
        }

        if (request.StatusCode < 0)
        {
            // Stands for a bug in a handler: must reach the client as UNKNOWN without this text.
            throw new InvalidOperationException("internal detail that must not leak");
        }

        if (request.StatusCode != 0)
        {
            throw new RpcException(new Status((StatusCode)request.StatusCode, request.StatusMessage));
        }

        return new EchoResponse { Message = request.Message, Payload = request.Payload };
    }

    private static async Task StreamOutAsync(StreamOutRequest request, IServerStreamWriter<Chunk> responses, ServerCallContext context)
    {
        ByteString payload = ByteString.CopyFrom(new byte[request.Size]);
        for (int i = 0; i < request.Count; i++)
        {
            await responses.WriteAsync(new Chunk { Index = i, Payload = payload }, context.CancellationToken);
        }
    }

    private static async Task<StreamInResponse> StreamInAsync(IAsyncStreamReader<Chunk> requests, ServerCallContext context)
    {
        var response = new StreamInResponse();
        while (await requests.MoveNext(context.CancellationToken))
        {
            if (requests.Current.Index != response.Count)
            {
                throw new RpcException(new Status(StatusCode.DataLoss, $"Chunk {response.Count} arrived as {requests.Current.Index}."));
            }

            response.Count++;
            response.TotalBytes += requests.Current.Payload.Length;
        }

        return response;
    }

    private static async Task DuplexAsync(IAsyncStreamReader<Chunk> requests, IServerStreamWriter<Chunk> responses, ServerCallContext context)
    {
        while (await requests.MoveNext(context.CancellationToken))
        {
            await responses.WriteAsync(requests.Current, context.CancellationToken);
        }
    }

    private async Task WaitForCancelAsync(WaitForCancelRequest request, IServerStreamWriter<Chunk> responses, ServerCallContext context)
    {
        _observations[request.Id] = new GetCancelObservationResponse { Started = true };
        await responses.WriteAsync(new Chunk { Index = 0 }, context.CancellationToken);
        try
        {
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        }
        catch (OperationCanceledException)
        {
            _observations[request.Id] = new GetCancelObservationResponse
            {
                Started = true,
                Cancelled = true,
                DeadlineExceeded = context.Deadline <= DateTime.UtcNow,
            };
            throw;
        }
    }

    private Task<GetCancelObservationResponse> GetCancelObservationAsync(GetCancelObservationRequest request, ServerCallContext context) =>
        Task.FromResult(_observations.TryGetValue(request.Id, out GetCancelObservationResponse? observed) ? observed : new GetCancelObservationResponse());
}
