using System.Globalization;
using System.Net;
using System.Text;

namespace SlidePlugin.Grpc;

/// <summary>
/// Constants of the gRPC over HTTP/2 protocol (grpc/doc/PROTOCOL-HTTP2.md) and the small encodings it
/// defines: status message percent-encoding, <c>grpc-timeout</c>, binary metadata. Server and client both
/// use this class, so every literal of the protocol lives here.
/// </summary>
public static class GrpcProtocol
{
    /// <summary>The content type of gRPC requests and responses.</summary>
    public const string ContentType = "application/grpc";
    /// <summary>Header carrying the status code.</summary>
    public const string StatusHeader = "grpc-status";
    /// <summary>Header carrying the percent-encoded status message.</summary>
    public const string MessageHeader = "grpc-message";
    /// <summary>Header carrying the call's timeout.</summary>
    public const string TimeoutHeader = "grpc-timeout";
    /// <summary>Header naming the message compression of the sender.</summary>
    public const string MessageEncodingHeader = "grpc-encoding";
    /// <summary>Header listing the compressions the sender accepts.</summary>
    public const string MessageAcceptEncodingHeader = "grpc-accept-encoding";
    /// <summary>The header that requests trailers; gRPC requires <c>te: trailers</c>.</summary>
    public const string TeHeader = "te";
    /// <summary>The encodings this implementation accepts on receive.</summary>
    public const string AcceptedEncodings = "identity,gzip";
    /// <summary>The gzip message encoding.</summary>
    public const string GzipEncoding = "gzip";
    /// <summary>No message encoding.</summary>
    public const string IdentityEncoding = "identity";
    /// <summary>Default limit for a received message: 4 MiB, as grpcio, grpc-js and grpc-dotnet.</summary>
    public const int DefaultMaxReceiveMessageSize = 4 * 1024 * 1024;
    /// <summary>HTTP/2 error code CANCEL, used to reset a stream after a deadline.</summary>
    public const int Http2CancelErrorCode = 0x8;

    /// <summary>True for <c>application/grpc</c> and <c>application/grpc+proto</c> (any <c>+suffix</c> or parameters).</summary>
    public static bool IsGrpcContentType(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType) || !contentType.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        return contentType.Length == ContentType.Length || contentType[ContentType.Length] is '+' or ';';
    }

    /// <summary>
    /// Percent-encodes a status message: UTF-8 bytes outside 0x20-0x7E, and '%' itself, become %XX;
    /// nothing else changes (grpc-js decodes with decodeURI, so no other escaping is allowed).
    /// </summary>
    public static string EncodeMessage(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        bool plain = true;
        foreach (char c in message)
        {
            if (c < 0x20 || c > 0x7E || c == '%')
            {
                plain = false;
                break;
            }
        }

        if (plain)
        {
            return message;
        }

        var builder = new StringBuilder(message.Length * 3);
        foreach (byte b in Encoding.UTF8.GetBytes(message))
        {
            if (b < 0x20 || b > 0x7E || b == (byte)'%')
            {
                builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
            else
            {
                builder.Append((char)b);
            }
        }

        return builder.ToString();
    }

    /// <summary>Decodes a percent-encoded status message; malformed escapes are kept as they are.</summary>
    public static string DecodeMessage(string encoded)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        if (!encoded.Contains('%', StringComparison.Ordinal))
        {
            return encoded;
        }

        var bytes = new List<byte>(encoded.Length);
        for (int i = 0; i < encoded.Length; i++)
        {
            if (encoded[i] == '%' && i + 2 < encoded.Length &&
                byte.TryParse(encoded.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte value))
            {
                bytes.Add(value);
                i += 2;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(encoded[i].ToString()));
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>
    /// Parses a <c>grpc-timeout</c> value: 1 to 8 digits and a unit H, M, S, m (ms), u (µs) or n (ns).
    /// Returns null when it is malformed (the spec says to ignore it then).
    /// </summary>
    public static TimeSpan? ParseTimeout(string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length < 2 || value.Length > 9)
        {
            return null;
        }

        ReadOnlySpan<char> digits = value.AsSpan(0, value.Length - 1);
        foreach (char c in digits)
        {
            if (c is < '0' or > '9')
            {
                return null;
            }
        }

        long amount = long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        return value[^1] switch
        {
            'H' => TimeSpan.FromHours(amount),
            'M' => TimeSpan.FromMinutes(amount),
            'S' => TimeSpan.FromSeconds(amount),
            'm' => TimeSpan.FromMilliseconds(amount),
            'u' => TimeSpan.FromTicks(amount * 10),
            'n' => TimeSpan.FromTicks((amount + 99) / 100), // round up: a deadline never expires early
            _ => null,
        };
    }

    /// <summary>Formats a timeout for <c>grpc-timeout</c> in the finest unit that fits in 8 digits, rounding up.</summary>
    public static string FormatTimeout(TimeSpan timeout)
    {
        long ticks = Math.Max(0, timeout.Ticks);
        const long MaxDigits = 99_999_999;
        if (ticks <= MaxDigits / 100)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{ticks * 100}n");
        }

        (long ticksPerUnit, char unit)[] units =
            [(10, 'u'), (TimeSpan.TicksPerMillisecond, 'm'), (TimeSpan.TicksPerSecond, 'S'), (TimeSpan.TicksPerMinute, 'M'), (TimeSpan.TicksPerHour, 'H')];
        foreach ((long ticksPerUnit, char unit) in units)
        {
            long amount = (ticks + ticksPerUnit - 1) / ticksPerUnit;
            if (amount <= MaxDigits)
            {
                return string.Create(CultureInfo.InvariantCulture, $"{amount}{unit}");
            }
        }

        return string.Create(CultureInfo.InvariantCulture, $"{MaxDigits}H");
    }

    /// <summary>Decodes a <c>-bin</c> header value: base64, padded or not, possibly several values joined by commas.</summary>
    public static byte[] DecodeBinaryHeader(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var result = new List<byte>();
        foreach (string part in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            string padded = part.Length % 4 == 0 ? part : part + new string('=', 4 - (part.Length % 4));
            result.AddRange(Convert.FromBase64String(padded));
        }

        return result.ToArray();
    }

    /// <summary>Encodes bytes for a <c>-bin</c> header: base64 without padding, as grpc core sends it.</summary>
    public static string EncodeBinaryHeader(byte[] value) => Convert.ToBase64String(value).TrimEnd('=');

    /// <summary>True for headers that belong to the protocol and are not the caller's metadata.</summary>
    public static bool IsReservedHeader(string name) =>
        name.StartsWith(':') ||
        name.Equals("content-type", StringComparison.OrdinalIgnoreCase) ||
        name.Equals("content-length", StringComparison.OrdinalIgnoreCase) ||
        name.Equals(TeHeader, StringComparison.OrdinalIgnoreCase) ||
        name.Equals("host", StringComparison.OrdinalIgnoreCase) ||
        name.Equals(StatusHeader, StringComparison.OrdinalIgnoreCase) ||
        name.Equals(MessageHeader, StringComparison.OrdinalIgnoreCase) ||
        name.Equals(TimeoutHeader, StringComparison.OrdinalIgnoreCase) ||
        name.Equals(MessageEncodingHeader, StringComparison.OrdinalIgnoreCase) ||
        name.Equals(MessageAcceptEncodingHeader, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The status a client reports for a response without <c>grpc-status</c>, from its HTTP status
    /// (grpc/doc/http-grpc-status-mapping.md).
    /// </summary>
    public static StatusCode StatusFromHttp(HttpStatusCode httpStatus) => httpStatus switch
    {
        HttpStatusCode.BadRequest => StatusCode.Internal,
        HttpStatusCode.Unauthorized => StatusCode.Unauthenticated,
        HttpStatusCode.Forbidden => StatusCode.PermissionDenied,
        HttpStatusCode.NotFound => StatusCode.Unimplemented,
        HttpStatusCode.TooManyRequests or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout
            => StatusCode.Unavailable,
        _ => StatusCode.Unknown,
    };
}
