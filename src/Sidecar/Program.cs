using SlidePlugin.Sidecar.Cli;

return await SlidePluginCli.RunAsync(args).ConfigureAwait(false);
