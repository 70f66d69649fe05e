namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// How outputs larger than a client may receive in one message (4 MiB in grpcio, grpc-js and grpc-dotnet) are cut
/// for a stream: consecutive pieces of at most <see cref="MaxBytes"/>, and one empty piece for an empty output, so a
/// client always sees the output (and its total size) at least once.
/// </summary>
internal static class ResponseChunks
{
    /// <summary>Largest piece: half the receive limit, room for the message's other fields.</summary>
    public const int MaxBytes = 2 * 1024 * 1024;

    /// <summary>Offset and length of each piece of a <paramref name="totalBytes"/>-byte output, in order.</summary>
    public static IEnumerable<(int Offset, int Length)> Of(int totalBytes)
    {
        int offset = 0;
        do
        {
            int length = Math.Min(MaxBytes, totalBytes - offset);
            yield return (offset, length);
            offset += length;
        }
        while (offset < totalBytes);
    }
}
