using System.Net;

namespace SlidePlugin.Grpc.Tests.Core;

public class GrpcProtocolTests
{
    [Theory]
    [InlineData("plain ASCII message", "plain ASCII message")]
    [InlineData("100%", "100%25")]
    [InlineData("line\nbreak", "line%0Abreak")]
    [InlineData("ü", "%C3%BC")]
    [InlineData("slide 'ü' not found: 100% gone\n", "slide '%C3%BC' not found: 100%25 gone%0A")]
    [InlineData("日本", "%E6%97%A5%E6%9C%AC")]
    [InlineData("tab\there ~", "tab%09here ~")]
    public void EncodeMessage_Examples_PercentEncodeOnlyOutsidePrintableAsciiAndPercent(string message, string expected)
    {
        Assert.Equal(expected, GrpcProtocol.EncodeMessage(message));
        Assert.Equal(message, GrpcProtocol.DecodeMessage(expected));
    }

    [Theory]
    [InlineData("emoji 🧫 and ü, 50%")]
    [InlineData("")]
    [InlineData("%%%")]
    public void EncodeMessage_RoundTrip_Identity(string message)
    {
        Assert.Equal(message, GrpcProtocol.DecodeMessage(GrpcProtocol.EncodeMessage(message)));
    }

    [Theory]
    [InlineData("%G1 bad", "%G1 bad")]
    [InlineData("ends with %4", "ends with %4")]
    [InlineData("%", "%")]
    public void DecodeMessage_MalformedEscape_KeptAsIs(string encoded, string expected)
    {
        Assert.Equal(expected, GrpcProtocol.DecodeMessage(encoded));
    }

    [Theory]
    [InlineData("1H", 3600L * 10_000_000)]
    [InlineData("2M", 120L * 10_000_000)]
    [InlineData("3S", 3L * 10_000_000)]
    [InlineData("100m", 100L * 10_000)]
    [InlineData("250u", 2_500L)]
    [InlineData("1000n", 10L)]
    [InlineData("1n", 1L)] // rounds up: a deadline never expires early
    [InlineData("99999999S", 99_999_999L * 10_000_000)]
    public void ParseTimeout_EveryUnit_Parses(string value, long expectedTicks)
    {
        Assert.Equal(TimeSpan.FromTicks(expectedTicks), GrpcProtocol.ParseTimeout(value));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("S")]
    [InlineData("10")]
    [InlineData("10x")]
    [InlineData("123456789S")] // nine digits
    [InlineData("-1S")]
    [InlineData("1.5S")]
    public void ParseTimeout_Malformed_Null(string? value)
    {
        Assert.Null(GrpcProtocol.ParseTimeout(value));
    }

    [Theory]
    [InlineData(0.000_05)]
    [InlineData(0.25)]
    [InlineData(30)]
    [InlineData(86_400 * 365)]
    public void FormatTimeout_AnyTimeout_ParsesBackToAtLeastTheValue(double seconds)
    {
        TimeSpan timeout = TimeSpan.FromSeconds(seconds);

        string formatted = GrpcProtocol.FormatTimeout(timeout);

        Assert.InRange(formatted.Length, 2, 9);
        TimeSpan parsed = GrpcProtocol.ParseTimeout(formatted)!.Value;
        Assert.True(parsed >= timeout, $"{formatted} -> {parsed} < {timeout}");
        Assert.True(parsed - timeout <= TimeSpan.FromTicks(Math.Max(10, timeout.Ticks / 1_000_000)), formatted);
    }

    [Theory]
    [InlineData("AAH/", new byte[] { 0, 1, 255 })]
    [InlineData("AAH/AA", new byte[] { 0, 1, 255, 0 })]
    [InlineData("AAH/AA==", new byte[] { 0, 1, 255, 0 })]
    [InlineData("AAH/, AA", new byte[] { 0, 1, 255, 0 })]
    public void DecodeBinaryHeader_PaddedUnpaddedOrJoined_Decodes(string value, byte[] expected)
    {
        Assert.Equal(expected, GrpcProtocol.DecodeBinaryHeader(value));
    }

    [Fact]
    public void EncodeBinaryHeader_Bytes_Base64WithoutPadding()
    {
        Assert.Equal("AAH/AA", GrpcProtocol.EncodeBinaryHeader([0, 1, 255, 0]));
    }

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("application/grpc; charset=utf-8", true)]
    [InlineData("application/grpc-web", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void IsGrpcContentType_Examples(string? contentType, bool expected)
    {
        Assert.Equal(expected, GrpcProtocol.IsGrpcContentType(contentType));
    }

    [Theory]
    [InlineData(HttpStatusCode.BadRequest, StatusCode.Internal)]
    [InlineData(HttpStatusCode.Unauthorized, StatusCode.Unauthenticated)]
    [InlineData(HttpStatusCode.Forbidden, StatusCode.PermissionDenied)]
    [InlineData(HttpStatusCode.NotFound, StatusCode.Unimplemented)]
    [InlineData(HttpStatusCode.TooManyRequests, StatusCode.Unavailable)]
    [InlineData(HttpStatusCode.BadGateway, StatusCode.Unavailable)]
    [InlineData(HttpStatusCode.ServiceUnavailable, StatusCode.Unavailable)]
    [InlineData(HttpStatusCode.GatewayTimeout, StatusCode.Unavailable)]
    [InlineData(HttpStatusCode.InternalServerError, StatusCode.Unknown)]
    public void StatusFromHttp_Mapping_AsSpecified(HttpStatusCode http, StatusCode expected)
    {
        Assert.Equal(expected, GrpcProtocol.StatusFromHttp(http));
    }

    [Fact]
    public void MetadataEntry_UpperCaseKey_Normalized()
    {
        Assert.Equal("x-custom", new Metadata.Entry("X-Custom", "v").Key);
    }

    [Theory]
    [InlineData("bad key", "v")]
    [InlineData("x-text-bin", "v")]
    [InlineData("x-text", "é")]
    public void MetadataEntry_InvalidKeyOrValue_Throws(string key, string value)
    {
        Assert.Throws<ArgumentException>(() => new Metadata.Entry(key, value));
    }
}
