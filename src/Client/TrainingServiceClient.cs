using SlidePlugin.Protos.V1;

namespace SlidePlugin.Grpc;

/// <summary>
/// Typed client of <c>slideplugin.v1.TrainingService</c> over a <see cref="GrpcChannel"/>, shaped like a grpc-dotnet
/// generated client. Failures arrive as <see cref="RpcException"/>.
/// </summary>
public sealed class TrainingServiceClient(GrpcChannel channel)
{
    private static readonly Method<TrainRequest, TrainResponse> TrainMethod =
        Methods.FromService<TrainRequest, TrainResponse>(TrainingServiceReflection.Descriptor.Services[0], "Train");

    private readonly GrpcChannel _channel = channel ?? throw new ArgumentNullException(nameof(channel));

    /// <summary>
    /// Trains a model on the server: started, progress and one summary per epoch, then the checkpoint paths.
    /// Cancelling the call (<see cref="CallOptions.CancellationToken"/>) stops the run and keeps its last finished epoch.
    /// </summary>
    public AsyncServerStreamingCall<TrainResponse> Train(TrainRequest request, CallOptions options = default) =>
        _channel.AsyncServerStreamingCall(TrainMethod, request, options);
}
