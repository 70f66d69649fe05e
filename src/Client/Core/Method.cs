using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace SlidePlugin.Grpc;

/// <summary>The four kinds of gRPC call.</summary>
public enum MethodType
{
    /// <summary>One request, one response.</summary>
    Unary,
    /// <summary>A stream of requests, one response.</summary>
    ClientStreaming,
    /// <summary>One request, a stream of responses.</summary>
    ServerStreaming,
    /// <summary>Streams both ways.</summary>
    DuplexStreaming,
}

/// <summary>A method of a service: its kind, its path <c>/package.Service/Method</c>, and how its messages parse.</summary>
public sealed class Method<TRequest, TResponse>
    where TRequest : class, IMessage<TRequest>, new()
    where TResponse : class, IMessage<TResponse>, new()
{
    /// <summary>Creates a method.</summary>
    public Method(MethodType type, string serviceName, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentException.ThrowIfNullOrEmpty(name);
        Type = type;
        ServiceName = serviceName;
        Name = name;
        FullName = $"/{serviceName}/{name}";
    }

    /// <summary>The kind of call.</summary>
    public MethodType Type { get; }

    /// <summary>Fully qualified service name, e.g. <c>slideplugin.v1.SystemService</c>.</summary>
    public string ServiceName { get; }

    /// <summary>Method name, e.g. <c>GetServerInfo</c>.</summary>
    public string Name { get; }

    /// <summary>The HTTP/2 path, <c>/package.Service/Method</c>.</summary>
    public string FullName { get; }

    /// <summary>Parser of requests.</summary>
    public MessageParser<TRequest> RequestParser { get; } = new(() => new TRequest());

    /// <summary>Parser of responses.</summary>
    public MessageParser<TResponse> ResponseParser { get; } = new(() => new TResponse());
}

/// <summary>Builds <see cref="Method{TRequest, TResponse}"/> from protobuf descriptors.</summary>
public static class Methods
{
    /// <summary>The method as the protobuf descriptor declares it.</summary>
    public static Method<TRequest, TResponse> FromDescriptor<TRequest, TResponse>(MethodDescriptor descriptor)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        return new Method<TRequest, TResponse>(TypeOf(descriptor), descriptor.Service.FullName, descriptor.Name);
    }

    /// <summary>The method <paramref name="name"/> of <paramref name="service"/>, as its descriptor declares it.</summary>
    /// <exception cref="ArgumentException">The service declares no such method.</exception>
    public static Method<TRequest, TResponse> FromService<TRequest, TResponse>(ServiceDescriptor service, string name)
        where TRequest : class, IMessage<TRequest>, new()
        where TResponse : class, IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(service);
        return FromDescriptor<TRequest, TResponse>(service.FindMethodByName(name)
            ?? throw new ArgumentException($"Service '{service.FullName}' declares no method '{name}'.", nameof(name)));
    }

    /// <summary>The call kind a descriptor declares.</summary>
    public static MethodType TypeOf(MethodDescriptor descriptor)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        return (descriptor.IsClientStreaming, descriptor.IsServerStreaming) switch
        {
            (false, false) => MethodType.Unary,
            (true, false) => MethodType.ClientStreaming,
            (false, true) => MethodType.ServerStreaming,
            (true, true) => MethodType.DuplexStreaming,
        };
    }
}
