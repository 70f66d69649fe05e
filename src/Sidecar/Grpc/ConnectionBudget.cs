using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;

namespace SlidePlugin.Sidecar.Grpc;

/// <summary>
/// Connections the server serves, and a few more kept for health checks. Past <see cref="Limit"/> open connections,
/// a new one is accepted as health-only: it may call <c>grpc.health.v1.Health</c>, any other call gets
/// RESOURCE_EXHAUSTED (from <see cref="CallInterceptor"/>), and it is closed after <see cref="HealthOnlyLifetime"/>, so idle sockets cannot hold the
/// reserve the way they can hold the served connections. Kestrel refuses anything past <see cref="KestrelLimit"/>.
/// </summary>
public sealed class ConnectionBudget(long limit)
{
    /// <summary>Connections kept for health checks beyond the limit.</summary>
    public const int ReservedForHealth = 8;

    /// <summary>How long a health-only connection stays open: long enough for a health check, too short to hoard.</summary>
    public static readonly TimeSpan HealthOnlyLifetime = TimeSpan.FromSeconds(2);

    private const string HealthService = "/grpc.health.v1.Health/";

    private static readonly object HealthOnlyKey = new();

    private long _open;

    /// <summary>Connections served for any call.</summary>
    public long Limit { get; } = limit > 0 ? limit : throw new ArgumentOutOfRangeException(nameof(limit), limit, "The connection limit must be positive.");

    /// <summary>Kestrel's cap: the limit plus the health reserve.</summary>
    public long KestrelLimit => Limit + ReservedForHealth;

    /// <summary>Counts connections and marks those past the limit health-only (outermost connection middleware).</summary>
    public Func<ConnectionDelegate, ConnectionDelegate> Middleware => next => async connection =>
    {
        long open = Interlocked.Increment(ref _open);
        try
        {
            if (open <= Limit)
            {
                await next(connection).ConfigureAwait(false);
                return;
            }

            connection.Items[HealthOnlyKey] = Limit;
            using var lifetime = new CancellationTokenSource(HealthOnlyLifetime);
            using CancellationTokenRegistration close = lifetime.Token.Register(() =>
                connection.Abort(new ConnectionAbortedException($"A health-only connection lasts {HealthOnlyLifetime.TotalSeconds:0} s.")));
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _open);
        }
    };

    /// <summary>Whether the request came on a connection past the limit.</summary>
    internal static bool IsHealthOnly(HttpContext httpContext) =>
        httpContext.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(HealthOnlyKey) == true;

    /// <summary>The refusal of a call other than health on a health-only connection.</summary>
    internal static string HealthOnlyMessage(HttpContext httpContext) =>
        $"The server has {httpContext.Features.Get<IConnectionItemsFeature>()?.Items[HealthOnlyKey]} connections open, its limit; this connection is kept for health checks. Reuse an open connection or try again later.";
}
