using SlidePlugin.Testing.V1;

namespace SlidePlugin.Grpc.Tests.Interop;

/// <summary>The interop service's methods for our client, built from the service descriptor.</summary>
internal static class InteropMethods
{
    private static Google.Protobuf.Reflection.MethodDescriptor Find(string name) =>
        InteropTestReflection.Descriptor.Services[0].FindMethodByName(name);

    public static readonly Method<EchoRequest, EchoResponse> Echo = Methods.FromDescriptor<EchoRequest, EchoResponse>(Find("Echo"));
    public static readonly Method<StreamOutRequest, Chunk> StreamOut = Methods.FromDescriptor<StreamOutRequest, Chunk>(Find("StreamOut"));
    public static readonly Method<Chunk, StreamInResponse> StreamIn = Methods.FromDescriptor<Chunk, StreamInResponse>(Find("StreamIn"));
    public static readonly Method<Chunk, Chunk> Duplex = Methods.FromDescriptor<Chunk, Chunk>(Find("Duplex"));
    public static readonly Method<WaitForCancelRequest, Chunk> WaitForCancel = Methods.FromDescriptor<WaitForCancelRequest, Chunk>(Find("WaitForCancel"));
    public static readonly Method<GetCancelObservationRequest, GetCancelObservationResponse> GetCancelObservation =
        Methods.FromDescriptor<GetCancelObservationRequest, GetCancelObservationResponse>(Find("GetCancelObservation"));
    public static readonly Method<EchoRequest, EchoResponse> UnknownMethod = new(MethodType.Unary, "slideplugin.testing.v1.InteropTestService", "NoSuchMethod");
}
