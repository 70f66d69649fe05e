using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Health.V1;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace SlidePlugin.Sidecar.Grpc.Health;

/// <summary>
/// <c>grpc.health.v1.Health</c> (grpc/doc/health-checking.md): Check, List and Watch, overall (empty
/// service name) and per service. All statuses turn NOT_SERVING when the server starts shutting down,
/// and open Watch streams see that change before they end.
/// </summary>
public sealed class HealthService : global::Grpc.Health.V1.Health.HealthBase
{
    private readonly ConcurrentDictionary<string, ServingStatus> _statuses = new(StringComparer.Ordinal);
    private readonly Lock _changeLock = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _shuttingDown;

    /// <summary>Sets the status of <paramref name="service"/> (empty for the whole server) and wakes watchers.</summary>
    public void SetStatus(string service, ServingStatus status)
    {
        ArgumentNullException.ThrowIfNull(service);
        _statuses[service] = status;
        SignalChange();
    }

    /// <summary>Marks every service NOT_SERVING for good: the server is stopping.</summary>
    public void EnterShutdown()
    {
        _shuttingDown = true;
        foreach (string service in _statuses.Keys)
        {
            _statuses[service] = ServingStatus.NotServing;
        }

        SignalChange();
    }

    /// <summary>Hosts Check, List and Watch.</summary>
    public void BindTo(GrpcServiceRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.Add(this);
    }

    /// <inheritdoc />
    public override Task<HealthCheckResponse> Check(HealthCheckRequest request, ServerCallContext context) =>
        _statuses.TryGetValue(request.Service, out ServingStatus status)
            ? Task.FromResult(new HealthCheckResponse { Status = status })
            : throw new RpcException(new Status(StatusCode.NotFound, $"Service '{request.Service}' is unknown to the health service."));

    /// <inheritdoc />
    public override Task<HealthListResponse> List(HealthListRequest request, ServerCallContext context)
    {
        var response = new HealthListResponse();
        foreach ((string service, ServingStatus status) in _statuses)
        {
            response.Statuses[service] = new HealthCheckResponse { Status = status };
        }

        return Task.FromResult(response);
    }

    /// <inheritdoc />
    public override async Task Watch(HealthCheckRequest request, IServerStreamWriter<HealthCheckResponse> responseStream, ServerCallContext context)
    {
        ServingStatus? sent = null;
        while (true)
        {
            Task changed;
            lock (_changeLock)
            {
                changed = _changed.Task;
            }

            ServingStatus current = _statuses.TryGetValue(request.Service, out ServingStatus status) ? status : ServingStatus.ServiceUnknown;
            if (current != sent)
            {
                await responseStream.WriteAsync(new HealthCheckResponse { Status = current }, context.CancellationToken).ConfigureAwait(false);
                sent = current;
            }

            if (_shuttingDown)
            {
                return; // the last status said NOT_SERVING; end the stream so shutdown need not wait for it
            }

            await changed.WaitAsync(context.CancellationToken).ConfigureAwait(false);
        }
    }

    private void SignalChange()
    {
        TaskCompletionSource previous;
        lock (_changeLock)
        {
            previous = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        previous.TrySetResult();
    }
}
