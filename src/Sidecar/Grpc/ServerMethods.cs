using Google.Protobuf;
using SlidePlugin.Grpc;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>Handler of a unary method.</summary>
public delegate Task<TResponse> UnaryServerMethod<TRequest, TResponse>(TRequest request, ServerCallContext context);

/// <summary>Handler of a server-streaming method.</summary>
public delegate Task ServerStreamingServerMethod<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context);

/// <summary>Handler of a client-streaming method.</summary>
public delegate Task<TResponse> ClientStreamingServerMethod<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context);

/// <summary>Handler of a bidirectional streaming method.</summary>
public delegate Task DuplexStreamingServerMethod<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context);

/// <summary>The response stream of a server- or duplex-streaming call.</summary>
public interface IServerStreamWriter<in T> : IAsyncStreamWriter<T>;

/// <summary>A bound method: its path, its kind, and how to run one call of it.</summary>
internal abstract class ServerMethod(string fullName, MethodType type)
{
    public string FullName { get; } = fullName;

    public MethodType Type { get; } = type;

    /// <summary>Runs the handler for one call; the caller ends the call with the handler's status.</summary>
    public abstract Task InvokeAsync(GrpcServerCall call);
}

/// <summary>Unary: exactly one request message, one response message.</summary>
internal sealed class UnaryServerCallHandler<TRequest, TResponse>(string fullName, UnaryServerMethod<TRequest, TResponse> handler)
    : ServerMethod(fullName, MethodType.Unary)
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>
{
    private static readonly MessageParser<TRequest> Parser = new(() => new TRequest());

    public override async Task InvokeAsync(GrpcServerCall call)
    {
        TRequest request = await RequestReading.ReadSingleAsync(call, Parser).ConfigureAwait(false);
        TResponse response = await handler(request, call.Context).ConfigureAwait(false);
        await call.WriteMessageAsync(response, CancellationToken.None).ConfigureAwait(false);
    }
}

/// <summary>Server streaming: one request message, then the handler writes responses.</summary>
internal sealed class ServerStreamingServerCallHandler<TRequest, TResponse>(string fullName, ServerStreamingServerMethod<TRequest, TResponse> handler)
    : ServerMethod(fullName, MethodType.ServerStreaming)
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>
{
    private static readonly MessageParser<TRequest> Parser = new(() => new TRequest());

    public override async Task InvokeAsync(GrpcServerCall call)
    {
        TRequest request = await RequestReading.ReadSingleAsync(call, Parser).ConfigureAwait(false);
        await handler(request, new HttpContextStreamWriter<TResponse>(call), call.Context).ConfigureAwait(false);
    }
}

/// <summary>Client streaming: the handler reads requests, then returns one response.</summary>
internal sealed class ClientStreamingServerCallHandler<TRequest, TResponse>(string fullName, ClientStreamingServerMethod<TRequest, TResponse> handler)
    : ServerMethod(fullName, MethodType.ClientStreaming)
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>
{
    public override async Task InvokeAsync(GrpcServerCall call)
    {
        TResponse response = await handler(new HttpContextStreamReader<TRequest>(call), call.Context).ConfigureAwait(false);
        await call.WriteMessageAsync(response, CancellationToken.None).ConfigureAwait(false);
    }
}

/// <summary>Duplex streaming: the handler reads and writes as it likes.</summary>
internal sealed class DuplexStreamingServerCallHandler<TRequest, TResponse>(string fullName, DuplexStreamingServerMethod<TRequest, TResponse> handler)
    : ServerMethod(fullName, MethodType.DuplexStreaming)
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>
{
    public override Task InvokeAsync(GrpcServerCall call) =>
        handler(new HttpContextStreamReader<TRequest>(call), new HttpContextStreamWriter<TResponse>(call), call.Context);
}

/// <summary>Reading the single request of unary and server-streaming calls.</summary>
internal static class RequestReading
{
    public static async Task<TRequest> ReadSingleAsync<TRequest>(GrpcServerCall call, MessageParser<TRequest> parser)
        where TRequest : class, IMessage<TRequest>
    {
        TRequest request = await call.ReadMessageAsync(parser, CancellationToken.None).ConfigureAwait(false)
            ?? throw new RpcException(new Status(StatusCode.Internal, "Request message not received: a unary request needs exactly one message."));
        if (await call.ReadMessageAsync(parser, CancellationToken.None).ConfigureAwait(false) is not null)
        {
            throw new RpcException(new Status(StatusCode.Internal, "Additional request message received: a unary request needs exactly one message."));
        }

        return request;
    }
}

/// <summary>The request stream of a call, read message by message from the request body.</summary>
internal sealed class HttpContextStreamReader<T>(GrpcServerCall call) : IAsyncStreamReader<T>
    where T : class, IMessage<T>, new()
{
    private static readonly MessageParser<T> Parser = new(() => new T());

    public T Current { get; private set; } = null!;

    public async Task<bool> MoveNext(CancellationToken cancellationToken)
    {
        T? message = await call.ReadMessageAsync(Parser, cancellationToken).ConfigureAwait(false);
        if (message is null)
        {
            return false;
        }

        Current = message;
        return true;
    }
}

/// <summary>The response stream of a call.</summary>
internal sealed class HttpContextStreamWriter<T>(GrpcServerCall call) : IServerStreamWriter<T>
    where T : class, IMessage<T>
{
    public Task WriteAsync(T message, CancellationToken cancellationToken = default) => call.WriteMessageAsync(message, cancellationToken);
}
