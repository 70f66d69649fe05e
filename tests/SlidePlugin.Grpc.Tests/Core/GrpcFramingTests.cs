using System.IO.Compression;
using System.IO.Pipelines;
using SlidePlugin.Testing.V1;

namespace SlidePlugin.Grpc.Tests.Core;

public class GrpcFramingTests
{
    private const int Max = 4 * 1024 * 1024;

    // Chunk { index = 1 } is the two bytes 08 01; framed: flag 00, length 00 00 00 02, payload.
    private static readonly byte[] ChunkIndexOne = [0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x01];

    private static async Task<Chunk?> ReadAsync(Pipe pipe, string? encoding = null, int max = Max) =>
        await GrpcFraming.ReadMessageAsync(pipe.Reader, Chunk.Parser, max, encoding, CancellationToken.None);

    [Fact]
    public void WriteMessage_Chunk_WritesFlagBigEndianLengthAndPayload()
    {
        Assert.Equal(ChunkIndexOne, GrpcFraming.FrameMessage(new Chunk { Index = 1 }));
    }

    [Fact]
    public void WriteMessage_EmptyMessage_FiveZeroBytes()
    {
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0 }, GrpcFraming.FrameMessage(new Chunk()));
    }

    [Fact]
    public async Task ReadMessage_EmptyMessage_ParsesDefaults()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(new byte[] { 0, 0, 0, 0, 0 });
        await pipe.Writer.CompleteAsync();

        Chunk? message = await ReadAsync(pipe);

        Assert.NotNull(message);
        Assert.Equal(new Chunk(), message);
        Assert.Null(await ReadAsync(pipe));
    }

    [Fact]
    public async Task ReadMessage_HeaderSplitAcrossWrites_WaitsForTheRest()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(ChunkIndexOne.AsMemory(0, 3));
        ValueTask<Chunk?> read = GrpcFraming.ReadMessageAsync(pipe.Reader, Chunk.Parser, Max, null, CancellationToken.None);
        Assert.False(read.IsCompleted);

        await pipe.Writer.WriteAsync(ChunkIndexOne.AsMemory(3, 3));
        Assert.False(read.IsCompleted);
        await pipe.Writer.WriteAsync(ChunkIndexOne.AsMemory(6));

        Assert.Equal(1, (await read)!.Index);
    }

    [Fact]
    public async Task ReadMessage_TwoMessagesInOneWrite_ReadsBoth()
    {
        var pipe = new Pipe();
        byte[] two = [.. ChunkIndexOne, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02];
        await pipe.Writer.WriteAsync(two);
        await pipe.Writer.CompleteAsync();

        Assert.Equal(1, (await ReadAsync(pipe))!.Index);
        Assert.Equal(2, (await ReadAsync(pipe))!.Index);
        Assert.Null(await ReadAsync(pipe));
    }

    [Fact]
    public async Task ReadMessage_FlagTwo_ThrowsInternal()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(new byte[] { 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x01 });

        var error = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(pipe));

        Assert.Equal(StatusCode.Internal, error.StatusCode);
    }

    [Fact]
    public async Task ReadMessage_DeclaredLengthOverLimit_ResourceExhaustedBeforePayloadArrives()
    {
        var pipe = new Pipe();
        // 4 MiB + 1 declared, no payload sent: the limit is checked from the header alone.
        await pipe.Writer.WriteAsync(new byte[] { 0x00, 0x00, 0x40, 0x00, 0x01 });

        var error = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(pipe));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Contains("4194305", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadMessage_LengthExactlyAtLimit_Accepted()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(ChunkIndexOne);

        Assert.Equal(1, (await ReadAsync(pipe, max: 2))!.Index);
    }

    [Fact]
    public async Task ReadMessage_StreamEndsInsidePayload_ThrowsInternal()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(new byte[] { 0x00, 0x00, 0x00, 0x00, 0x05, 0x08 });
        await pipe.Writer.CompleteAsync();

        var error = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(pipe));

        Assert.Equal(StatusCode.Internal, error.StatusCode);
    }

    [Fact]
    public async Task ReadMessage_CompressedFlagWithoutEncoding_ThrowsInternal()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(new byte[] { 0x01, 0x00, 0x00, 0x00, 0x02, 0x08, 0x01 });

        var error = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(pipe));

        Assert.Equal(StatusCode.Internal, error.StatusCode);
        Assert.Contains("grpc-encoding", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadMessage_GzipCompressed_Decompresses()
    {
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            gzip.Write([0x08, 0x07]);
        }

        byte[] payload = compressed.ToArray();
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(new byte[] { 0x01, 0x00, 0x00, 0x00, (byte)payload.Length });
        await pipe.Writer.WriteAsync(payload);

        Assert.Equal(7, (await ReadAsync(pipe, encoding: "gzip"))!.Index);
    }

    [Fact]
    public async Task ReadMessage_UnknownEncoding_ThrowsUnimplemented()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(new byte[] { 0x01, 0x00, 0x00, 0x00, 0x02, 0x08, 0x01 });

        var error = await Assert.ThrowsAsync<RpcException>(() => ReadAsync(pipe, encoding: "snappy"));

        Assert.Equal(StatusCode.Unimplemented, error.StatusCode);
    }
}
