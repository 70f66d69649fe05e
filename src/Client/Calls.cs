namespace SlidePlugin.Grpc;

/// <summary>What every call exposes besides its messages: headers, status, trailers, and disposal (which cancels).</summary>
public interface ICallState : IDisposable
{
    /// <summary>The response headers, once they arrive.</summary>
    Task<Metadata> ResponseHeadersAsync { get; }

    /// <summary>The final status; valid once the call has finished.</summary>
    Status GetStatus();

    /// <summary>The trailing metadata; valid once the call has finished.</summary>
    Metadata GetTrailers();
}

/// <summary>Base of the call objects: forwards to the call's state.</summary>
public abstract class CallBase : IDisposable
{
    private readonly ICallState _state;

    private protected CallBase(ICallState state) => _state = state;

    /// <summary>The response headers, once they arrive.</summary>
    public Task<Metadata> ResponseHeadersAsync => _state.ResponseHeadersAsync;

    /// <summary>The final status; valid once the call has finished.</summary>
    public Status GetStatus() => _state.GetStatus();

    /// <summary>The trailing metadata; valid once the call has finished.</summary>
    public Metadata GetTrailers() => _state.GetTrailers();

    /// <summary>Cancels the call if it is still running and frees its resources.</summary>
    public void Dispose()
    {
        _state.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A unary call in progress.</summary>
public sealed class AsyncUnaryCall<TResponse> : CallBase
{
    internal AsyncUnaryCall(Task<TResponse> responseAsync, ICallState state) : base(state) => ResponseAsync = responseAsync;

    /// <summary>The response; throws <see cref="RpcException"/> on a non-OK status.</summary>
    public Task<TResponse> ResponseAsync { get; }

    /// <summary>Awaits the response.</summary>
    public System.Runtime.CompilerServices.TaskAwaiter<TResponse> GetAwaiter() => ResponseAsync.GetAwaiter();
}

/// <summary>A server-streaming call in progress.</summary>
public sealed class AsyncServerStreamingCall<TResponse> : CallBase
{
    internal AsyncServerStreamingCall(IAsyncStreamReader<TResponse> responseStream, ICallState state) : base(state) => ResponseStream = responseStream;

    /// <summary>The responses; <c>MoveNext</c> throws <see cref="RpcException"/> on a non-OK status.</summary>
    public IAsyncStreamReader<TResponse> ResponseStream { get; }
}

/// <summary>A client-streaming call in progress.</summary>
public sealed class AsyncClientStreamingCall<TRequest, TResponse> : CallBase
{
    internal AsyncClientStreamingCall(IClientStreamWriter<TRequest> requestStream, Task<TResponse> responseAsync, ICallState state) : base(state)
    {
        RequestStream = requestStream;
        ResponseAsync = responseAsync;
    }

    /// <summary>Where requests are written; call <c>CompleteAsync</c> when done.</summary>
    public IClientStreamWriter<TRequest> RequestStream { get; }

    /// <summary>The response; throws <see cref="RpcException"/> on a non-OK status.</summary>
    public Task<TResponse> ResponseAsync { get; }
}

/// <summary>A bidirectional streaming call in progress.</summary>
public sealed class AsyncDuplexStreamingCall<TRequest, TResponse> : CallBase
{
    internal AsyncDuplexStreamingCall(IClientStreamWriter<TRequest> requestStream, IAsyncStreamReader<TResponse> responseStream, ICallState state) : base(state)
    {
        RequestStream = requestStream;
        ResponseStream = responseStream;
    }

    /// <summary>Where requests are written; call <c>CompleteAsync</c> when done.</summary>
    public IClientStreamWriter<TRequest> RequestStream { get; }

    /// <summary>The responses.</summary>
    public IAsyncStreamReader<TResponse> ResponseStream { get; }
}
