using SlidePlugin.Testing.V1;

namespace SlidePlugin.Grpc.Tests.Core;

public class MethodsTests
{
    [Theory]
    [InlineData("Echo", MethodType.Unary)]
    [InlineData("StreamOut", MethodType.ServerStreaming)]
    [InlineData("StreamIn", MethodType.ClientStreaming)]
    [InlineData("Duplex", MethodType.DuplexStreaming)]
    public void FromService_DeclaredMethod_FullNameAndCallKindFromTheDescriptor(string name, MethodType expected)
    {
        Method<EchoRequest, EchoResponse> method = Methods.FromService<EchoRequest, EchoResponse>(InteropTestReflection.Descriptor.Services[0], name);

        Assert.Equal(expected, method.Type);
        Assert.Equal($"/slideplugin.testing.v1.InteropTestService/{name}", method.FullName);
    }

    [Fact]
    public void FromService_UndeclaredMethod_ThrowsNamingServiceAndMethod()
    {
        var error = Assert.Throws<ArgumentException>(() =>
            Methods.FromService<EchoRequest, EchoResponse>(InteropTestReflection.Descriptor.Services[0], "NoSuchMethod"));

        Assert.Contains("slideplugin.testing.v1.InteropTestService", error.Message, StringComparison.Ordinal);
        Assert.Contains("NoSuchMethod", error.Message, StringComparison.Ordinal);
    }
}
