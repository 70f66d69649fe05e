using Grpc.Core;
using SlidePlugin.Testing.V1;

namespace SlidePlugin.Grpc.Tests.Interop;

/// <summary>The interop service's methods for our client, built from the service descriptor.</summary>
internal static class InteropMethods
{
    private static readonly Google.Protobuf.Reflection.ServiceDescriptor Service = InteropTestReflection.Descriptor.Services[0];

    public static readonly Method<EchoRequest, EchoResponse> Echo = Methods.FromService<EchoRequest, EchoResponse>(Service, "Echo");
    public static readonly Method<StreamOutRequest, Chunk> StreamOut = Methods.FromService<StreamOutRequest, Chunk>(Service, "StreamOut");
    public static readonly Method<Chunk, StreamInResponse> StreamIn = Methods.FromService<Chunk, StreamInResponse>(Service, "StreamIn");
    public static readonly Method<Chunk, Chunk> Duplex = Methods.FromService<Chunk, Chunk>(Service, "Duplex");
    public static readonly Method<WaitForCancelRequest, Chunk> WaitForCancel = Methods.FromService<WaitForCancelRequest, Chunk>(Service, "WaitForCancel");
    public static readonly Method<GetCancelObservationRequest, GetCancelObservationResponse> GetCancelObservation =
        Methods.FromService<GetCancelObservationRequest, GetCancelObservationResponse>(Service, "GetCancelObservation");
    public static readonly Method<EchoRequest, EchoResponse> UnknownMethod =
        new(MethodType.Unary, "slideplugin.testing.v1.InteropTestService", "NoSuchMethod", Methods.Marshaller<EchoRequest>(), Methods.Marshaller<EchoResponse>());
}
