using System.CommandLine;

namespace SlidePlugin.Sidecar.Cli;

/// <summary><c>slideplugin serve</c>: runs the gRPC sidecar that viewers and scripts call.</summary>
internal static class ServeCommand
{
    public static Command Create(SlidePluginCli.GlobalOptions global)
    {
        _ = global;
        var command = new Command("serve",
            "Run the gRPC sidecar (HTTP/2 on 127.0.0.1:50051 by default) for slide viewers, batch scripts and " +
            "any gRPC client of proto/slideplugin/v1.");
        command.SetAction(parseResult => SlidePluginCli.ReportNotImplemented(parseResult, "the gRPC server ('serve')", 3));
        return command;
    }
}
