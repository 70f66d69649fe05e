using Google.Protobuf;
using Google.Protobuf.Reflection;
using ServiceDescriptor = Google.Protobuf.Reflection.ServiceDescriptor;
using SlidePlugin.Grpc;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>
/// The services a server offers, keyed by <c>/package.Service/Method</c> as the protobuf descriptors
/// declare them. A method the descriptor declares but no handler binds answers UNIMPLEMENTED; a handler
/// whose call kind differs from the descriptor's is refused at start-up, not at call time.
/// </summary>
public sealed class GrpcServiceRegistry
{
    private readonly Dictionary<string, ServerMethod> _methods = new(StringComparer.Ordinal);
    private readonly List<ServiceDescriptor> _services = [];

    /// <summary>Every registered service, in registration order.</summary>
    public IReadOnlyList<ServiceDescriptor> Services => _services;

    /// <summary>Starts binding the methods of <paramref name="service"/>.</summary>
    public ServiceBinder AddService(ServiceDescriptor service)
    {
        ArgumentNullException.ThrowIfNull(service);
        if (_services.Any(s => s.FullName == service.FullName))
        {
            throw new InvalidOperationException($"Service '{service.FullName}' is already registered.");
        }

        _services.Add(service);
        return new ServiceBinder(this, service);
    }

    internal bool TryGetMethod(string path, out ServerMethod method) => _methods.TryGetValue(path, out method!);

    internal bool HasService(string fullName) => _services.Any(s => s.FullName == fullName);

    internal void Bind(ServiceDescriptor service, string methodName, MethodType type, Func<string, ServerMethod> create)
    {
        MethodDescriptor descriptor = service.FindMethodByName(methodName)
            ?? throw new InvalidOperationException($"Service '{service.FullName}' has no method '{methodName}'.");
        MethodType declared = Methods.TypeOf(descriptor);
        if (declared != type)
        {
            throw new InvalidOperationException($"'{service.FullName}/{methodName}' is {declared} in its .proto, but a {type} handler was bound.");
        }

        string path = $"/{service.FullName}/{methodName}";
        if (!_methods.TryAdd(path, create(path)))
        {
            throw new InvalidOperationException($"'{path}' is already bound.");
        }
    }
}

/// <summary>Binds handlers to the methods of one service.</summary>
public sealed class ServiceBinder
{
    private readonly GrpcServiceRegistry _registry;
    private readonly ServiceDescriptor _service;

    internal ServiceBinder(GrpcServiceRegistry registry, ServiceDescriptor service)
    {
        _registry = registry;
        _service = service;
    }

    /// <summary>Binds a unary handler.</summary>
    public ServiceBinder Unary<TRequest, TResponse>(string method, UnaryServerMethod<TRequest, TResponse> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>
    {
        _registry.Bind(_service, method, MethodType.Unary, path => new UnaryServerCallHandler<TRequest, TResponse>(path, handler));
        return this;
    }

    /// <summary>Binds a server-streaming handler.</summary>
    public ServiceBinder ServerStreaming<TRequest, TResponse>(string method, ServerStreamingServerMethod<TRequest, TResponse> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>
    {
        _registry.Bind(_service, method, MethodType.ServerStreaming, path => new ServerStreamingServerCallHandler<TRequest, TResponse>(path, handler));
        return this;
    }

    /// <summary>Binds a client-streaming handler.</summary>
    public ServiceBinder ClientStreaming<TRequest, TResponse>(string method, ClientStreamingServerMethod<TRequest, TResponse> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>
    {
        _registry.Bind(_service, method, MethodType.ClientStreaming, path => new ClientStreamingServerCallHandler<TRequest, TResponse>(path, handler));
        return this;
    }

    /// <summary>Binds a bidirectional streaming handler.</summary>
    public ServiceBinder DuplexStreaming<TRequest, TResponse>(string method, DuplexStreamingServerMethod<TRequest, TResponse> handler)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>
    {
        _registry.Bind(_service, method, MethodType.DuplexStreaming, path => new DuplexStreamingServerCallHandler<TRequest, TResponse>(path, handler));
        return this;
    }
}
