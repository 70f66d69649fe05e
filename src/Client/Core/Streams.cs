using System.Runtime.CompilerServices;

namespace SlidePlugin.Grpc;

/// <summary>Reads a stream of messages, one <see cref="MoveNext"/> at a time.</summary>
public interface IAsyncStreamReader<out T>
{
    /// <summary>The message read by the last successful <see cref="MoveNext"/>.</summary>
    T Current { get; }

    /// <summary>Reads the next message; false at the end of the stream.</summary>
    Task<bool> MoveNext(CancellationToken cancellationToken);
}

/// <summary>Writes a stream of messages; each write completes when the transport has taken it (backpressure).</summary>
public interface IAsyncStreamWriter<in T>
{
    /// <summary>Writes one message.</summary>
    Task WriteAsync(T message, CancellationToken cancellationToken = default);
}

/// <summary>The request stream of a client- or duplex-streaming call.</summary>
public interface IClientStreamWriter<in T> : IAsyncStreamWriter<T>
{
    /// <summary>Ends the request stream: the server sees end of stream.</summary>
    Task CompleteAsync();
}

/// <summary>Helpers over <see cref="IAsyncStreamReader{T}"/>.</summary>
public static class AsyncStreamReaderExtensions
{
    /// <summary>All messages of the stream as an async sequence.</summary>
    public static async IAsyncEnumerable<T> ReadAllAsync<T>(this IAsyncStreamReader<T> reader, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        while (await reader.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            yield return reader.Current;
        }
    }
}
