using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Reflection.V1;
using SlidePlugin.Grpc;
using ServiceDescriptor = Google.Protobuf.Reflection.ServiceDescriptor;

namespace SlidePlugin.Sidecar.Grpc.Reflection;

/// <summary>
/// Server reflection, <c>grpc.reflection.v1</c> and <c>v1alpha</c> (the same messages on the wire, so one
/// implementation with the v1 types serves both): list services, file by name, file containing a symbol.
/// Each answer carries the file and its transitive imports, well-known types included, so that tools such
/// as grpcurl can describe and call every method. Errors go in <c>error_response</c>; the stream stays open.
/// </summary>
public sealed class ReflectionService
{
    private readonly List<string> _serviceNames = [];
    private readonly Dictionary<string, FileDescriptor> _filesByName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FileDescriptor> _filesBySymbol = new(StringComparer.Ordinal);

    /// <summary>Binds the reflection services into <paramref name="registry"/> and indexes every service registered so far, these included.</summary>
    public static ReflectionService BindTo(GrpcServiceRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        var service = new ReflectionService();
        registry.AddService(ReflectionReflection.Descriptor.Services[0])
            .DuplexStreaming<ServerReflectionRequest, ServerReflectionResponse>("ServerReflectionInfo", service.ServerReflectionInfoAsync);
        registry.AddService(global::Grpc.Reflection.V1Alpha.ReflectionReflection.Descriptor.Services[0])
            .DuplexStreaming<ServerReflectionRequest, ServerReflectionResponse>("ServerReflectionInfo", service.ServerReflectionInfoAsync);
        service.Index(registry.Services);
        return service;
    }

    private void Index(IEnumerable<ServiceDescriptor> services)
    {
        foreach (ServiceDescriptor service in services)
        {
            _serviceNames.Add(service.FullName);
            IndexFile(service.File);
        }
    }

    private void IndexFile(FileDescriptor file)
    {
        if (!_filesByName.TryAdd(file.Name, file))
        {
            return;
        }

        foreach (ServiceDescriptor service in file.Services)
        {
            _filesBySymbol[service.FullName] = file;
            foreach (MethodDescriptor method in service.Methods)
            {
                _filesBySymbol[method.FullName] = file;
            }
        }

        foreach (MessageDescriptor message in file.MessageTypes)
        {
            IndexMessage(message, file);
        }

        foreach (EnumDescriptor enumType in file.EnumTypes)
        {
            _filesBySymbol[enumType.FullName] = file;
        }

        foreach (FileDescriptor dependency in file.Dependencies)
        {
            IndexFile(dependency);
        }
    }

    private void IndexMessage(MessageDescriptor message, FileDescriptor file)
    {
        _filesBySymbol[message.FullName] = file;
        foreach (MessageDescriptor nested in message.NestedTypes)
        {
            IndexMessage(nested, file);
        }

        foreach (EnumDescriptor nestedEnum in message.EnumTypes)
        {
            _filesBySymbol[nestedEnum.FullName] = file;
        }
    }

    private async Task ServerReflectionInfoAsync(
        IAsyncStreamReader<ServerReflectionRequest> requests, IServerStreamWriter<ServerReflectionResponse> responses, ServerCallContext context)
    {
        while (await requests.MoveNext(context.CancellationToken).ConfigureAwait(false))
        {
            ServerReflectionRequest request = requests.Current;
            ServerReflectionResponse response = Answer(request);
            response.ValidHost = request.Host;
            response.OriginalRequest = request;
            await responses.WriteAsync(response, context.CancellationToken).ConfigureAwait(false);
        }
    }

    private ServerReflectionResponse Answer(ServerReflectionRequest request) => request.MessageRequestCase switch
    {
        ServerReflectionRequest.MessageRequestOneofCase.ListServices => ListServices(),
        ServerReflectionRequest.MessageRequestOneofCase.FileByFilename =>
            _filesByName.TryGetValue(request.FileByFilename, out FileDescriptor? byName)
                ? FileWithDependencies(byName)
                : Error(StatusCode.NotFound, $"File not found: '{request.FileByFilename}'."),
        ServerReflectionRequest.MessageRequestOneofCase.FileContainingSymbol =>
            _filesBySymbol.TryGetValue(request.FileContainingSymbol, out FileDescriptor? bySymbol)
                ? FileWithDependencies(bySymbol)
                : Error(StatusCode.NotFound, $"Symbol not found: '{request.FileContainingSymbol}'."),
        ServerReflectionRequest.MessageRequestOneofCase.AllExtensionNumbersOfType =>
            _filesBySymbol.ContainsKey(request.AllExtensionNumbersOfType)
                ? new ServerReflectionResponse { AllExtensionNumbersResponse = new ExtensionNumberResponse { BaseTypeName = request.AllExtensionNumbersOfType } }
                : Error(StatusCode.NotFound, $"Type not found: '{request.AllExtensionNumbersOfType}'."),
        ServerReflectionRequest.MessageRequestOneofCase.FileContainingExtension =>
            Error(StatusCode.NotFound, $"Extension not found: {request.FileContainingExtension.ContainingType}({request.FileContainingExtension.ExtensionNumber})."),
        _ => Error(StatusCode.InvalidArgument, "The reflection request names no known request kind."),
    };

    private ServerReflectionResponse ListServices()
    {
        var list = new ListServiceResponse();
        list.Service.AddRange(_serviceNames.Select(name => new ServiceResponse { Name = name }));
        return new ServerReflectionResponse { ListServicesResponse = list };
    }

    private static ServerReflectionResponse FileWithDependencies(FileDescriptor file)
    {
        var files = new FileDescriptorResponse();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Queue<FileDescriptor>([file]);
        while (pending.Count > 0)
        {
            FileDescriptor next = pending.Dequeue();
            if (!seen.Add(next.Name))
            {
                continue;
            }

            files.FileDescriptorProto.Add(next.SerializedData);
            foreach (FileDescriptor dependency in next.Dependencies)
            {
                pending.Enqueue(dependency);
            }
        }

        return new ServerReflectionResponse { FileDescriptorResponse = files };
    }

    private static ServerReflectionResponse Error(StatusCode code, string message) =>
        new() { ErrorResponse = new ErrorResponse { ErrorCode = (int)code, ErrorMessage = message } };
}
