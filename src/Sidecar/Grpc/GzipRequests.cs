using System.IO.Compression;
using Grpc.Core;
using Grpc.Net.Compression;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>
/// gzip for request and response messages, as Grpc.AspNetCore's own, except that a corrupt compressed request is
/// INTERNAL naming the cause (the conventions' status for a malformed message), not an UNKNOWN handler failure.
/// </summary>
internal sealed class GzipRequests : ICompressionProvider
{
    public string EncodingName => "gzip";

    public Stream CreateCompressionStream(Stream stream, CompressionLevel? compressionLevel) =>
        new GZipStream(stream, compressionLevel ?? CompressionLevel.Fastest, leaveOpen: true);

    public Stream CreateDecompressionStream(Stream stream) => new Guarded(new GZipStream(stream, CompressionMode.Decompress, leaveOpen: true));

    /// <summary>Reads through the gzip stream; its InvalidDataException becomes the call's INTERNAL status.</summary>
    private sealed class Guarded(GZipStream inner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            try
            {
                return inner.Read(buffer);
            }
            catch (InvalidDataException e)
            {
                throw Corrupt(e);
            }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidDataException e)
            {
                throw Corrupt(e);
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        private static RpcException Corrupt(InvalidDataException e) =>
            new(new Status(StatusCode.Internal, $"The request message's gzip data is corrupt: {e.Message}"));
    }
}
