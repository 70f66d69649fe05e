using System.CommandLine;
using SlidePlugin.Engine.Interop;
using SlidePlugin.Sidecar.Grpc;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Sidecar.Services;

namespace SlidePlugin.Sidecar.Cli;

/// <summary><c>slideplugin serve</c>: runs the gRPC sidecar that viewers and scripts call.</summary>
internal static class ServeCommand
{
    /// <summary>Environment variable read when <c>--auth-token</c> is not given (keeps the token out of <c>ps</c>).</summary>
    public const string AuthTokenVariable = "SLIDEPLUGIN_AUTH_TOKEN";

    public static Command Create(SlidePluginCli.GlobalOptions global)
    {
        var listen = new Option<string>("--listen")
        {
            Description = "TCP address HOST:PORT (HTTP/2 cleartext with prior knowledge, or TLS). A non-loopback address needs --auth-token.",
            DefaultValueFactory = _ => ServerSettings.DefaultListen,
        };
        var unix = new Option<string?>("--unix") { Description = "Listen on this Unix domain socket instead (a stale socket file is removed; mode 0600)." };
        var tlsCert = new Option<FileInfo?>("--tls-cert") { Description = "PEM certificate: serve TLS (with --tls-key)." };
        var tlsKey = new Option<FileInfo?>("--tls-key") { Description = "PEM private key of --tls-cert." };
        var authToken = new Option<string?>("--auth-token") { Description = $"Require 'authorization: Bearer <token>' on every call (or set {AuthTokenVariable})." };
        var detailedErrors = new Option<bool>("--detailed-errors") { Description = "Send handler exception types and messages to clients (for debugging)." };
        var maxReceive = new Option<int>("--max-receive-message-size")
        {
            Description = "Largest request message in bytes; larger ones end with RESOURCE_EXHAUSTED.",
            DefaultValueFactory = _ => GrpcServerOptions.DefaultMaxReceiveMessageSize,
        };
        var webListen = new Option<string?>("--web-listen")
        {
            Description = "Also serve HTTP/1.1 on HOST:PORT for browsers and scripts: the viewer at /, gRPC-Web, and HTTP/JSON routes (/v1/...) with the OpenAPI document at /openapi.json. Loopback unless --auth-token is set.",
        };
        var webOrigins = new Option<string[]>("--web-origin")
        {
            Description = "A browser origin (e.g. http://localhost:3000) allowed to call the --web-listen endpoint across origins (repeatable; default: none).",
            AllowMultipleArgumentsPerToken = false,
        };
        Option<Engine.Encoders.EncoderDevice> device = CliEncoders.DeviceOption("Where tile encoders run: cpu, cuda or cuda:N (docs/gpu.md).");
        var grace = new Option<double>("--shutdown-grace")
        {
            Description = "Seconds that running calls may go on after SIGTERM before they are cancelled.",
            DefaultValueFactory = _ => 10,
        };

        var slideRoots = new Option<string[]>("--slide-root")
        {
            Description = "A folder whose slides may be served (repeatable; default: the current directory). Paths outside every root, through '..' or symlinks, are refused.",
            AllowMultipleArgumentsPerToken = false,
        };
        var slideCache = new Option<int>("--slide-cache")
        {
            Description = "How many slides to keep open (least recently used closed first).",
            DefaultValueFactory = _ => 16,
        };

        var workDir = new Option<DirectoryInfo>("--work-dir")
        {
            Description = "Folder the server writes to: training runs (runs/<name>) and the analysis store (analyses.sqlite). Created when needed.",
            DefaultValueFactory = _ => new DirectoryInfo(Path.Combine(Environment.CurrentDirectory, "slideplugin-work")),
        };

        var modelRoots = new Option<string[]>("--model-root")
        {
            Description = "A folder whose models (NAME.safetensors with its card NAME.json; tile encoders NAME.onnx with theirs) requests may name and ListModels lists " +
                          "(repeatable; default: --work-dir, where training writes, and the bundled models). Paths outside every root, through '..' or symlinks, are refused.",
            AllowMultipleArgumentsPerToken = false,
        };

        var command = new Command("serve",
            "Run the gRPC sidecar (HTTP/2 on 127.0.0.1:50051 by default) for slide viewers, batch scripts and " +
            "any gRPC client of proto/slideplugin/v1. Health (grpc.health.v1) and reflection are always on.");
        foreach (Option option in new Option[] { listen, unix, webListen, webOrigins, slideRoots, slideCache, workDir, modelRoots, device, tlsCert, tlsKey, authToken, detailedErrors, maxReceive, grace })
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            TextWriter stderr = parseResult.InvocationConfiguration.Error;
            if (!NativeCheck.Passes(stderr, out IReadOnlyList<NativeDependencyStatus> natives))
            {
                return ExitCodes.MissingNativeDependency;
            }

            var settings = new ServerSettings
            {
                Listen = parseResult.GetRequiredValue(listen),
                UnixSocket = parseResult.GetValue(unix),
                WebListen = parseResult.GetValue(webListen),
                WebOrigins = parseResult.GetValue(webOrigins) ?? [],
                TlsCertificateFile = parseResult.GetValue(tlsCert)?.FullName,
                TlsKeyFile = parseResult.GetValue(tlsKey)?.FullName,
                ShutdownGrace = TimeSpan.FromSeconds(parseResult.GetValue(grace)),
                Grpc = new Grpc.GrpcServerOptions
                {
                    AuthToken = parseResult.GetValue(authToken) ?? Environment.GetEnvironmentVariable(AuthTokenVariable),
                    EnableDetailedErrors = parseResult.GetValue(detailedErrors),
                    MaxReceiveMessageSize = parseResult.GetValue(maxReceive),
                },
            };

            string[] roots = parseResult.GetValue(slideRoots) is { Length: > 0 } given ? given : [Environment.CurrentDirectory];
            SlideRoots slideRootPolicy;
            try
            {
                slideRootPolicy = new SlideRoots(roots);
            }
            catch (DirectoryNotFoundException e)
            {
                stderr.WriteLine($"slideplugin: --slide-root: {e.Message}");
                return ExitCodes.Usage;
            }

            string work = parseResult.GetRequiredValue(workDir).FullName;
            ModelRoots modelRootPolicy;
            try
            {
                // The work folder is a model root by default: create it now (it is otherwise made when first written).
                modelRootPolicy = new ModelRoots(parseResult.GetValue(modelRoots) is { Length: > 0 } givenModels
                    ? givenModels
                    : new[] { Directory.CreateDirectory(work).FullName, BundledModel.Folder }.Where(Directory.Exists));
            }
            catch (DirectoryNotFoundException e)
            {
                stderr.WriteLine($"slideplugin: --model-root: {e.Message}");
                return ExitCodes.Usage;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"slideplugin: --work-dir: cannot create '{work}': {e.Message}");
                return ExitCodes.Usage;
            }

            if (parseResult.GetValue(slideCache) < 1)
            {
                stderr.WriteLine("slideplugin: --slide-cache must be at least 1.");
                return ExitCodes.Usage;
            }

            using Serilog.Core.Logger logger = LoggingSetup.CreateSerilogLogger(SlidePluginCli.LogSettingsOf(parseResult, global));
            using var slides = new SlideServiceImpl(slideRootPolicy, parseResult.GetValue(slideCache));
            Engine.Encoders.EncoderDevice encoderDevice = parseResult.GetValue(device);
            var training = new TrainingServiceImpl(slideRootPolicy, work, encoderDevice, modelRootPolicy);
            using var analysis = new AnalysisServiceImpl(slideRootPolicy, work, BundledModel.Path, device: encoderDevice, models: modelRootPolicy);
            using var segmentation = new SegmentationServiceImpl(slideRootPolicy, modelRootPolicy);
            SidecarServer server;
            try
            {
                server = SidecarServer.Create(settings, logger, registry =>
                {
                    new SystemServiceImpl(natives).BindTo(registry);
                    slides.BindTo(registry);
                    training.BindTo(registry);
                    analysis.BindTo(registry);
                    segmentation.BindTo(registry);
                    new DatasetServiceImpl(slideRootPolicy).BindTo(registry);
                });
            }
            catch (ServerConfigurationException e)
            {
                stderr.WriteLine($"slideplugin: {e.Message}");
                return ExitCodes.Failure;
            }

            await using (server.ConfigureAwait(false))
            {
                try
                {
                    await server.StartAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (ServerConfigurationException e)
                {
                    stderr.WriteLine($"slideplugin: {e.Message}");
                    return ExitCodes.Failure;
                }

                logger.ForContext("SourceContext", "SlidePlugin.Serve").Information("slideplugin {Version} serving gRPC on {Addresses}, slides under {SlideRoots}, models under {ModelRoots}", typeof(ServeCommand).Assembly.GetName().Version?.ToString(3), server.Addresses, slideRootPolicy.Roots, modelRootPolicy.Roots);
                if (server.WebAddress is { } web)
                {
                    logger.ForContext("SourceContext", "SlidePlugin.Serve").Information("gRPC-Web and HTTP/JSON on {WebAddress} (OpenAPI document: {OpenApi}); the viewer at {Viewer}", web, web + "/openapi.json", web + "/");
                }
                await server.WaitForShutdownAsync(CancellationToken.None).ConfigureAwait(false);
            }

            return ExitCodes.Success;
        });
        return command;
    }
}
