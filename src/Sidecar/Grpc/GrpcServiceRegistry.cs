using System.Reflection;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>
/// The service instances a server hosts. Each is a class on its generated <c>*Base</c>, registered as a singleton
/// and mapped with <c>MapGrpcService</c>; the product and the tests build their instances, the server maps them.
/// </summary>
public sealed class GrpcServiceRegistry
{
    private readonly List<Action<IServiceCollection>> _registrations = [];
    private readonly List<Action<IEndpointRouteBuilder>> _mappings = [];
    private readonly HashSet<Type> _registered = [];
    private readonly List<string> _names = [];

    /// <summary>The full names of the hosted services (<c>package.Service</c>), in the order added.</summary>
    public IReadOnlyList<string> ServiceNames => _names;

    /// <summary>Hosts <paramref name="service"/> (an instance of a generated service base).</summary>
    public GrpcServiceRegistry Add<TService>(TService service)
        where TService : class
    {
        ArgumentNullException.ThrowIfNull(service);
        if (!_registered.Add(typeof(TService)))
        {
            throw new InvalidOperationException($"'{typeof(TService).Name}' is already hosted.");
        }

        _names.Add(ServiceNameOf(typeof(TService)));
        _registrations.Add(services => services.AddSingleton(service));
        _mappings.Add(endpoints => endpoints.MapGrpcService<TService>());
        return this;
    }

    /// <summary>The service's name from the descriptor of the generated class its base was made from.</summary>
    private static string ServiceNameOf(Type type)
    {
        for (Type? t = type; t is not null; t = t.BaseType)
        {
            if (t.GetCustomAttribute<BindServiceMethodAttribute>(inherit: false) is { } bind
                && bind.BindType.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) is Google.Protobuf.Reflection.ServiceDescriptor descriptor)
            {
                return descriptor.FullName;
            }
        }

        throw new ArgumentException($"'{type.Name}' does not derive from a generated gRPC service base.", nameof(type));
    }

    internal void Register(IServiceCollection services) => _registrations.ForEach(r => r(services));

    internal void Map(IEndpointRouteBuilder endpoints) => _mappings.ForEach(m => m(endpoints));
}
