using System.Reflection;
using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>Puts <see cref="UnparsableRequests{TService}"/> in place of Grpc.AspNetCore's binder of service methods.</summary>
internal static class UnparsableRequests
{
    /// <summary>
    /// Removes the package's binder and registers ours, for every service (health and reflection included). Call it after
    /// every AddGrpc* registration: each calls AddGrpc again, which adds the package's binder back.
    /// </summary>
    public static void Replace(Microsoft.Extensions.DependencyInjection.IServiceCollection services)
    {
        Microsoft.Extensions.DependencyInjection.ServiceDescriptor packageBinder = services.Single(s =>
            s.ServiceType == typeof(IServiceMethodProvider<>) && s.ImplementationType?.Name == "BinderServiceMethodProvider`1");
        services.Remove(packageBinder);
        services.Add(Microsoft.Extensions.DependencyInjection.ServiceDescriptor.Singleton(typeof(IServiceMethodProvider<>), typeof(UnparsableRequests<>)));
    }
}

/// <summary>
/// Binds every service's methods as Grpc.AspNetCore's own binder does, except that a request message that does not
/// parse ends the call with INTERNAL naming the message type (the conventions' status), where the package answers
/// UNKNOWN "Exception was thrown by handler." and logs a stack trace as if our code had failed.
/// Registered in place of the package's binder (<see cref="UnparsableRequests.Replace"/>).
/// </summary>
internal sealed class UnparsableRequests<TService> : IServiceMethodProvider<TService>
    where TService : class
{
    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<TService> context)
    {
        for (Type? type = typeof(TService); type is not null; type = type.BaseType)
        {
            if (type.GetCustomAttribute<BindServiceMethodAttribute>(inherit: false) is { } bind)
            {
                MethodInfo bindService = bind.BindType.GetMethod(bind.BindMethodName, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static,
                    [typeof(ServiceBinderBase), type]) ?? throw new InvalidOperationException($"{bind.BindType.Name}.{bind.BindMethodName} was not found.");
                bindService.Invoke(null, [new Binder(context), null]);
                return;
            }
        }
    }

    private static Method<TRequest, TResponse> Guarded<TRequest, TResponse>(Method<TRequest, TResponse> method)
        where TRequest : class
        where TResponse : class
    {
        Marshaller<TRequest> marshaller = method.RequestMarshaller;
        Marshaller<TRequest> guarded = Marshallers.Create(marshaller.ContextualSerializer, context =>
        {
            try
            {
                return marshaller.ContextualDeserializer(context);
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new RpcException(new Status(StatusCode.Internal, $"The request is not a valid {typeof(TRequest).Name} message: {e.Message}"));
            }
        });
        return new Method<TRequest, TResponse>(method.Type, method.ServiceName, method.Name, guarded, method.ResponseMarshaller);
    }

    /// <summary>The service's own method for <paramref name="method"/>, as an open-instance delegate (the package activates the service per call).</summary>
    private static TDelegate Handler<TDelegate>(IMethod method, params Type[] parameters)
        where TDelegate : Delegate =>
        (TDelegate)Delegate.CreateDelegate(typeof(TDelegate),
            typeof(TService).GetMethod(method.Name, BindingFlags.Public | BindingFlags.Instance, parameters)
            ?? throw new InvalidOperationException($"{typeof(TService).Name} has no method {method.Name}."));

    private sealed class Binder(ServiceMethodProviderContext<TService> context) : ServiceBinderBase
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
            context.AddUnaryMethod(Guarded(method), [], Handler<UnaryServerMethod<TService, TRequest, TResponse>>(method, typeof(TRequest), typeof(ServerCallContext)));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddClientStreamingMethod(Guarded(method), [],
                Handler<ClientStreamingServerMethod<TService, TRequest, TResponse>>(method, typeof(IAsyncStreamReader<TRequest>), typeof(ServerCallContext)));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddServerStreamingMethod(Guarded(method), [],
                Handler<ServerStreamingServerMethod<TService, TRequest, TResponse>>(method, typeof(TRequest), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext)));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddDuplexStreamingMethod(Guarded(method), [],
                Handler<DuplexStreamingServerMethod<TService, TRequest, TResponse>>(method, typeof(IAsyncStreamReader<TRequest>), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext)));
    }
}
