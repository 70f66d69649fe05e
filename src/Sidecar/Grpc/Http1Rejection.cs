using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Connections;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>
/// Connection middleware for cleartext endpoints. Kestrel serves HTTP/2 with prior knowledge only on an
/// HTTP/2-only endpoint, where an HTTP/1.x request would just get a broken connection; this middleware
/// peeks at the first bytes and answers anything that is not the HTTP/2 preface with
/// <c>426 Upgrade Required</c>, as a gRPC server must. Nothing is consumed on the HTTP/2 path.
/// </summary>
internal static class Http1Rejection
{
    private static readonly byte[] PrefaceStart = "PRI "u8.ToArray();

    private const string UpgradeRequiredBody = "This is a gRPC server: use HTTP/2 (prior knowledge on cleartext).\n";

    private static readonly byte[] UpgradeRequired = Encoding.ASCII.GetBytes(
        "HTTP/1.1 426 Upgrade Required\r\nUpgrade: h2c\r\nConnection: close\r\nContent-Type: text/plain\r\n" +
        $"Content-Length: {UpgradeRequiredBody.Length}\r\n\r\n{UpgradeRequiredBody}");

    /// <summary>How long a new connection may take to send its first four bytes before it is closed.</summary>
    public static readonly TimeSpan PrefaceTimeout = TimeSpan.FromSeconds(5);

    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware => next => async connection =>
    {
        PipeReader input = connection.Transport.Input;
        // A connection that sends nothing (or 1-3 bytes) would otherwise hold a socket forever: 19,900 of them took the
        // server to its file-descriptor limit.
        using var preface = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
        preface.CancelAfter(PrefaceTimeout);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(preface.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!connection.ConnectionClosed.IsCancellationRequested)
            {
                connection.Abort(new ConnectionAbortedException($"No request within {PrefaceTimeout.TotalSeconds:0} s."));
                return;
            }

            ReadOnlySequence<byte> buffer = result.Buffer;
            if (buffer.Length >= PrefaceStart.Length || result.IsCompleted)
            {
                bool isHttp2 = buffer.Length >= PrefaceStart.Length && buffer.Slice(0, PrefaceStart.Length).ToArray().AsSpan().SequenceEqual(PrefaceStart);
                input.AdvanceTo(buffer.Start); // consume and examine nothing: Kestrel reads it all again
                if (isHttp2)
                {
                    await next(connection).ConfigureAwait(false);
                }
                else if (!result.IsCompleted)
                {
                    await connection.Transport.Output.WriteAsync(UpgradeRequired, connection.ConnectionClosed).ConfigureAwait(false);
                    await connection.Transport.Output.CompleteAsync().ConfigureAwait(false);
                }

                return;
            }

            input.AdvanceTo(buffer.Start, buffer.End); // need more bytes
        }
    };
}
