using System.Net.Security;

namespace SlidePlugin.Client;

/// <summary>How <see cref="SlidePluginChannel"/> connects to a sidecar.</summary>
public sealed class SlidePluginClientOptions
{
    /// <summary>The default largest response message, as gRPC's: 4 MiB (the server sends tiles and chunks below it).</summary>
    public const int DefaultMaxReceiveMessageSize = 4 * 1024 * 1024;

    /// <summary>Sent as <c>authorization: Bearer &lt;token&gt;</c> on every call when set (also over cleartext on loopback).</summary>
    public string? BearerToken { get; set; }

    /// <summary>Validates the server's TLS certificate (e.g. to trust a self-signed one); default: the system's rules.</summary>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; set; }

    /// <summary>Largest response message accepted; null means no limit.</summary>
    public int? MaxReceiveMessageSize { get; set; } = DefaultMaxReceiveMessageSize;

    /// <summary>Retry calls that only read (slide metadata, regions, tiles, stored analyses, health) when the server answers UNAVAILABLE.</summary>
    public bool RetryReads { get; set; } = true;

    /// <summary>A handler to use instead of the channel's own <see cref="SocketsHttpHandler"/>; the channel does not dispose it.</summary>
    public HttpMessageHandler? HttpHandler { get; set; }
}
