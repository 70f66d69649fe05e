namespace SlidePlugin.Grpc;

/// <summary>The outcome of a call: a code and a human-readable detail.</summary>
/// <param name="StatusCode">The status code.</param>
/// <param name="Detail">The message carried in <c>grpc-message</c>; empty when there is none.</param>
public readonly record struct Status(StatusCode StatusCode, string Detail)
{
    /// <summary>The OK status.</summary>
    public static Status DefaultSuccess { get; } = new(StatusCode.OK, string.Empty);

    /// <inheritdoc />
    public override string ToString() => $"Status(StatusCode=\"{StatusCode}\", Detail=\"{Detail}\")";
}

/// <summary>A call ended with a non-OK status; thrown by the client, and by handlers to end a call with that status.</summary>
public sealed class RpcException : Exception
{
    /// <summary>Creates the exception for <paramref name="status"/>.</summary>
    public RpcException(Status status) : this(status, new Metadata()) { }

    /// <summary>Creates the exception for <paramref name="status"/> with trailers to send or that were received.</summary>
    public RpcException(Status status, Metadata trailers) : base(status.ToString())
    {
        Status = status;
        Trailers = trailers ?? throw new ArgumentNullException(nameof(trailers));
    }

    /// <summary>Creates the exception with code Unknown.</summary>
    public RpcException() : this(new Status(StatusCode.Unknown, string.Empty)) { }

    /// <summary>Creates the exception with code Unknown and this detail.</summary>
    public RpcException(string message) : this(new Status(StatusCode.Unknown, message)) { }

    /// <summary>Creates the exception with code Unknown, this detail and its cause.</summary>
    public RpcException(string message, Exception innerException) : base(message, innerException)
    {
        Status = new Status(StatusCode.Unknown, message);
        Trailers = new Metadata();
    }

    /// <summary>The call's status.</summary>
    public Status Status { get; }

    /// <summary>The status code, for convenience.</summary>
    public StatusCode StatusCode => Status.StatusCode;

    /// <summary>Trailing metadata.</summary>
    public Metadata Trailers { get; }
}
