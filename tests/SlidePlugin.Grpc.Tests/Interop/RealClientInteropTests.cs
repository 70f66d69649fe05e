using System.Text.Json;

namespace SlidePlugin.Grpc.Tests.Interop;

/// <summary>
/// The sidecar's gRPC server called by real clients: Python grpcio (Debian's python3-grpcio) and Node
/// @grpc/grpc-js. Each case runs in the client's own process and reports what it saw.
/// </summary>
public sealed class RealClientInteropTests(InteropServerFixture server) : IClassFixture<InteropServerFixture>
{
    public static TheoryData<string> Clients => new() { "python", "node" };

    private Task<JsonElement> RunAsync(string client, string testCase) => client == "python"
        ? InteropClients.RunPythonAsync(server, testCase)
        : InteropClients.RunNodeAsync(server, testCase);

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Unary_Echo_ReturnsMessageAndPayload(string client)
    {
        JsonElement result = await RunAsync(client, "unary");

        Assert.Equal("héllo", result.GetProperty("message").GetString());
        Assert.Equal([0, 1, 254, 255], result.GetProperty("payload").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Unary_HandlerThrowsRpcException_ClientSeesStatusAndNonAsciiMessage(string client)
    {
        JsonElement result = await RunAsync(client, "unary_error");

        Assert.Equal("NOT_FOUND", result.GetProperty("code").GetString());
        Assert.Equal("slide 'ü' not found: 100% gone\n", result.GetProperty("details").GetString());
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task ServerStreaming_TenThousandMessages_AllArriveInOrder(string client)
    {
        JsonElement result = await RunAsync(client, "server_stream");

        Assert.Equal(10_000, result.GetProperty("count").GetInt32());
        Assert.True(result.GetProperty("ordered").GetBoolean());
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task ClientStreaming_TenThousandMessages_ServerCountsAll(string client)
    {
        JsonElement result = await RunAsync(client, "client_stream");

        Assert.Equal(10_000, result.GetProperty("count").GetInt32());
        Assert.Equal(320_000, result.GetProperty("total_bytes").GetInt64());
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Duplex_TenThousandMessages_EchoedInOrder(string client)
    {
        JsonElement result = await RunAsync(client, "duplex");

        Assert.Equal(10_000, result.GetProperty("count").GetInt32());
        Assert.True(result.GetProperty("ordered").GetBoolean());
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Deadline_Expires_ClientGetsDeadlineExceededAndServerTokenFires(string client)
    {
        JsonElement result = await RunAsync(client, "deadline");

        Assert.Equal("DEADLINE_EXCEEDED", result.GetProperty("code").GetString());
        // The handler's token fired. Whether the server's own timer or the client's reset (real clients enforce
        // the same deadline themselves) got there first is a race; ServerProtocolTests covers the server's timer.
        Assert.True(result.GetProperty("server_cancelled").GetBoolean());
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Cancel_MidStream_ServerTokenFiresWithoutDeadline(string client)
    {
        JsonElement result = await RunAsync(client, "cancel");

        Assert.Equal("CANCELLED", result.GetProperty("code").GetString());
        Assert.True(result.GetProperty("server_cancelled").GetBoolean());
        Assert.False(result.GetProperty("server_deadline_exceeded").GetBoolean());
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Receive_MessageOverFourMiB_ResourceExhaustedAndServerKeepsServing(string client)
    {
        JsonElement result = await RunAsync(client, "oversize");

        Assert.Equal("RESOURCE_EXHAUSTED", result.GetProperty("code").GetString());
        Assert.True(result.GetProperty("then_unary_ok").GetBoolean());
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Route_UnknownMethodOrService_Unimplemented(string client)
    {
        JsonElement result = await RunAsync(client, "unknown_method");

        Assert.Equal("UNIMPLEMENTED", result.GetProperty("method").GetProperty("code").GetString());
        Assert.Equal("UNIMPLEMENTED", result.GetProperty("service").GetProperty("code").GetString());
        // Grpc.AspNetCore's words: which of the two is unknown, not its name.
        Assert.Equal("Method is unimplemented.", result.GetProperty("method").GetProperty("details").GetString());
        Assert.Equal("Service is unimplemented.", result.GetProperty("service").GetProperty("details").GetString());
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Metadata_TextAndBinary_RoundTripInHeadersAndTrailers(string client)
    {
        JsonElement result = await RunAsync(client, "metadata");

        Assert.Equal("plain value", result.GetProperty("header_text").GetString());
        Assert.Equal("plain value", result.GetProperty("trailer_text").GetString());
        Assert.Equal([0, 1, 255], result.GetProperty("header_bin").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([0, 1, 255], result.GetProperty("trailer_bin").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Health_CheckAndWatch_ReportServingAndUnknown(string client)
    {
        JsonElement result = await RunAsync(client, "health");

        Assert.Equal("SERVING", result.GetProperty("overall").GetString());
        Assert.Equal("SERVING", result.GetProperty("service").GetString());
        Assert.Equal("NOT_FOUND", result.GetProperty("unknown").GetProperty("code").GetString());
        Assert.Equal("SERVING", result.GetProperty("watch_first").GetString());
        Assert.Equal("SERVICE_UNKNOWN", result.GetProperty("watch_unknown_first").GetString());
    }

    [Theory]
    [MemberData(nameof(Clients))]
    public async Task Reflection_V1AndV1Alpha_ListAndResolveEveryService(string client)
    {
        JsonElement result = await RunAsync(client, "reflection");

        string[] expected =
        [
            "grpc.health.v1.Health", "slideplugin.testing.v1.InteropTestService",
            "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
        ];
        foreach (string version in new[] { "v1", "v1alpha" })
        {
            JsonElement answer = result.GetProperty(version);
            Assert.Equal(expected.Order(), answer.GetProperty("services").EnumerateArray().Select(s => s.GetString()!).Order());
            JsonElement resolved = answer.GetProperty("resolved");
            if (client == "python")
            {
                // Python builds a descriptor pool from each answer, as grpcurl does, and resolves every method.
                Assert.Equal(
                    ["slideplugin.testing.v1.EchoRequest", "slideplugin.testing.v1.EchoResponse"],
                    resolved.GetProperty("slideplugin.testing.v1.InteropTestService").GetProperty("Echo").EnumerateArray().Select(e => e.GetString()));
                Assert.Equal(6, resolved.GetProperty("slideplugin.testing.v1.InteropTestService").EnumerateObject().Count());
                Assert.Equal(3, resolved.GetProperty("grpc.health.v1.Health").EnumerateObject().Count());
                // The service's file comes with its import, a well-known type.
                Assert.Equal(["google/protobuf/timestamp.proto", "interop_test.proto"],
                    answer.GetProperty("interop_files").EnumerateArray().Select(f => f.GetString()));
            }
            else
            {
                // Node checks that each answer's first file is the one declaring the service.
                Assert.All(resolved.EnumerateObject(), service => Assert.True(service.Value.GetBoolean(), service.Name));
            }

            Assert.Equal(5, answer.GetProperty("unknown_symbol_code").GetInt32());
            Assert.Equal(1, answer.GetProperty("file_by_name_count").GetInt32());
        }
    }
}
