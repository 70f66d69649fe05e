using SlidePlugin.Engine.Analysis;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;
using Grpc.Core;

namespace SlidePlugin.Sidecar.Services;

/// <summary>The one mapping from engine failures to gRPC statuses (see docs/conventions: status codes).</summary>
internal static class SlideStatus
{
    /// <summary>The status for <paramref name="exception"/>, or null when it is not an engine failure (it then propagates as is).</summary>
    public static Status? From(Exception exception) => exception switch
    {
        SlideException { Kind: SlideErrorKind.NotFound } e => new Status(StatusCode.NotFound, e.Message),
        SlideException { Kind: SlideErrorKind.Unsupported } e => new Status(StatusCode.InvalidArgument, e.Message),
        SlideException { Kind: SlideErrorKind.InvalidRequest } e => new Status(StatusCode.InvalidArgument, e.Message),
        SlideException { Kind: SlideErrorKind.OutOfRange } e => new Status(StatusCode.OutOfRange, e.Message),
        SlideException { Kind: SlideErrorKind.TooLarge } e => new Status(StatusCode.ResourceExhausted, e.Message),
        SlideException { Kind: SlideErrorKind.ReadFailed } e => new Status(StatusCode.DataLoss, e.Message),
        ImageCodecException e => new Status(StatusCode.Internal, e.Message),
        ImageTooLargeException e => new Status(StatusCode.ResourceExhausted, e.Message),
        AnalysisStoreCorruptException e => new Status(StatusCode.DataLoss, e.Message),
        Engine.Encoders.EncoderException e => new Status(StatusCode.InvalidArgument, e.Message),
        ArgumentException e and not ArgumentNullException => new Status(StatusCode.InvalidArgument, e.Message),
        _ => null,
    };
}
