using Grpc.Core;
using SlidePlugin.Engine.Interop;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Grpc;

using Contract = SlidePlugin.Protos.V1;

namespace SlidePlugin.Sidecar.Services;

/// <summary><c>slideplugin.v1.SystemService</c>: what the running sidecar is and what it runs on.</summary>
public sealed class SystemServiceImpl : Contract.SystemService.SystemServiceBase
{
    private readonly GetServerInfoResponse _info;

    /// <summary>Collects the facts once; they do not change while the server runs.</summary>
    public SystemServiceImpl(IReadOnlyList<NativeDependencyStatus> natives)
    {
        ArgumentNullException.ThrowIfNull(natives);
        _info = new GetServerInfoResponse
        {
            Version = typeof(SystemServiceImpl).Assembly.GetName().Version?.ToString(3) ?? "0.0.0",
            ComputeThreads = Environment.ProcessorCount,
        };
        _info.ApiVersions.Add("slideplugin.v1");
        _info.NativeLibraries.AddRange(natives.Select(n => new NativeLibraryInfo
        {
            Name = n.Dependency.DisplayName,
            Library = n.FileName,
            Version = n.Version ?? string.Empty,
            DebianPackage = n.Dependency.DebianPackage,
        }));
    }

    /// <summary>Binds the service's methods.</summary>
    public void BindTo(GrpcServiceRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.Add(this);
    }

    /// <inheritdoc />
    public override Task<GetServerInfoResponse> GetServerInfo(GetServerInfoRequest request, ServerCallContext context) => Task.FromResult(_info.Clone());
}
