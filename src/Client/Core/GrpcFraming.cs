using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Pipelines;
using Google.Protobuf;

namespace SlidePlugin.Grpc;

/// <summary>
/// gRPC message framing, the one place it is done: a 1-byte compressed flag, a 4-byte big-endian length,
/// then the payload. Frames of HTTP/2 and messages are unrelated: a header may straddle reads and one
/// read may hold many messages, so reading works on the <see cref="PipeReader"/>'s buffered sequence.
/// </summary>
public static class GrpcFraming
{
    /// <summary>Size of the message header.</summary>
    public const int HeaderSize = 5;

    /// <summary>
    /// Takes one whole message off the front of <paramref name="buffer"/>. Returns false, leaving the buffer
    /// as it was, while the header or payload is incomplete.
    /// </summary>
    /// <exception cref="RpcException">
    /// INTERNAL for a flag other than 0/1; RESOURCE_EXHAUSTED when the declared length exceeds
    /// <paramref name="maxMessageSize"/> (checked from the header, before the payload is buffered).
    /// </exception>
    public static bool TryReadMessage(ref ReadOnlySequence<byte> buffer, int maxMessageSize, out bool compressed, out ReadOnlySequence<byte> payload)
    {
        compressed = false;
        payload = default;
        if (buffer.Length < HeaderSize)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[HeaderSize];
        buffer.Slice(0, HeaderSize).CopyTo(header);
        compressed = header[0] switch
        {
            0 => false,
            1 => true,
            _ => throw new RpcException(new Status(StatusCode.Internal, $"Invalid message compressed flag {header[0]}: only 0 and 1 are allowed.")),
        };
        uint length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (length > (uint)maxMessageSize)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"Received message larger than max ({length} vs. {maxMessageSize})"));
        }

        if (buffer.Length < HeaderSize + length)
        {
            return false;
        }

        payload = buffer.Slice(HeaderSize, length);
        buffer = buffer.Slice(HeaderSize + length);
        return true;
    }

    /// <summary>
    /// Reads the next message from <paramref name="reader"/> and parses it. Returns null at a clean end of
    /// stream (no partial message buffered).
    /// </summary>
    /// <param name="reader">The request or response body.</param>
    /// <param name="parser">Parser of the message type.</param>
    /// <param name="maxMessageSize">Largest accepted payload (after decompression too).</param>
    /// <param name="encoding">The peer's <c>grpc-encoding</c>, or null.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <exception cref="RpcException">INTERNAL for a truncated message, a bad flag, or a compressed
    /// message without an encoding; RESOURCE_EXHAUSTED for an oversized one; UNIMPLEMENTED for an unknown encoding.</exception>
    public static async ValueTask<T?> ReadMessageAsync<T>(
        PipeReader reader, MessageParser<T> parser, int maxMessageSize, string? encoding, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(parser);
        while (true)
        {
            ReadResult result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            try
            {
                if (TryReadMessage(ref buffer, maxMessageSize, out bool compressed, out ReadOnlySequence<byte> payload))
                {
                    T message = compressed ? Decompress(payload, parser, maxMessageSize, encoding) : Parse(parser, payload);
                    reader.AdvanceTo(buffer.Start);
                    return message;
                }
            }
            catch
            {
                reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                throw;
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                long leftover = result.Buffer.Length;
                reader.AdvanceTo(result.Buffer.End);
                if (leftover > 0)
                {
                    throw new RpcException(new Status(StatusCode.Internal, "Incomplete message: the stream ended inside a message."));
                }

                return null;
            }

            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    /// <summary>Writes <paramref name="message"/> framed, uncompressed, into <paramref name="writer"/> (no flush).</summary>
    public static void WriteMessage(IBufferWriter<byte> writer, IMessage message)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(message);
        int size = message.CalculateSize();
        Span<byte> header = writer.GetSpan(HeaderSize);
        header[0] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(header[1..], (uint)size);
        writer.Advance(HeaderSize);
        message.WriteTo(writer);
    }

    /// <summary>The framed bytes of one message, for small request bodies.</summary>
    public static byte[] FrameMessage(IMessage message)
    {
        var buffer = new ArrayBufferWriter<byte>(HeaderSize + message.CalculateSize());
        WriteMessage(buffer, message);
        return buffer.WrittenSpan.ToArray();
    }

    private static T Parse<T>(MessageParser<T> parser, ReadOnlySequence<byte> payload) where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(payload);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new RpcException(new Status(StatusCode.Internal, $"Failed to deserialize message: {e.Message}"));
        }
    }

    /// <summary>A read of the gzip stream; corrupt data is INTERNAL, as the gRPC spec says for a failed decompression.</summary>
    private static int ReadGzip(GZipStream gzip, byte[] chunk)
    {
        try
        {
            return gzip.Read(chunk, 0, chunk.Length);
        }
        catch (InvalidDataException e)
        {
            throw new RpcException(new Status(StatusCode.Internal, $"The message could not be decompressed: {e.Message}"));
        }
    }

    private static T Decompress<T>(ReadOnlySequence<byte> payload, MessageParser<T> parser, int maxMessageSize, string? encoding)
        where T : IMessage<T>
    {
        if (string.IsNullOrEmpty(encoding) || encoding == GrpcProtocol.IdentityEncoding)
        {
            throw new RpcException(new Status(StatusCode.Internal,
                "Received a compressed message but no grpc-encoding was given."));
        }

        if (encoding != GrpcProtocol.GzipEncoding)
        {
            throw new RpcException(new Status(StatusCode.Unimplemented,
                $"Unsupported grpc-encoding '{encoding}'; supported: {GrpcProtocol.AcceptedEncodings}."));
        }

        using var compressedStream = new MemoryStream(payload.ToArray());
        using var gzip = new GZipStream(compressedStream, CompressionMode.Decompress);
        using var decompressed = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = ReadGzip(gzip, chunk)) > 0)
        {
            if (decompressed.Length + read > maxMessageSize)
            {
                throw new RpcException(new Status(StatusCode.ResourceExhausted,
                    $"Received message larger than max after decompression (limit {maxMessageSize})"));
            }

            decompressed.Write(chunk, 0, read);
        }

        return Parse(parser, new ReadOnlySequence<byte>(decompressed.GetBuffer(), 0, (int)decompressed.Length));
    }
}
