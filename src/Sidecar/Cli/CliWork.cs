using System.CommandLine;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.LabelMasks;
using SlidePlugin.Engine.Slides;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>Runs a verb's file work: a problem with the user's data is one line on stderr and exit code 1, never a stack trace.</summary>
internal static class CliWork
{
    /// <summary>Runs <paramref name="work"/> with the invocation's stdout after checking the native libraries.</summary>
    public static int Run(ParseResult parseResult, Action<TextWriter> work)
    {
        TextWriter stderr = parseResult.InvocationConfiguration.Error;
        if (!NativeCheck.Passes(stderr, out _))
        {
            return ExitCodes.MissingNativeDependency;
        }

        try
        {
            work(parseResult.InvocationConfiguration.Output);
            return ExitCodes.Success;
        }
        catch (Exception e) when (Unwrapped(e) is OperationCanceledException)
        {
            stderr.WriteLine("slideplugin: interrupted.");
            return ExitCodes.Interrupted;
        }
        catch (Exception e) when (Unwrapped(e) is LabelMaskException or DatasetException or ModelCheckpointException or SlideException
            or ImageCodecException or IOException or ArgumentException)
        {
            stderr.WriteLine($"slideplugin: {Unwrapped(e).Message}");
            return ExitCodes.Failure;
        }
    }

    /// <summary>The first failure inside a parallel loop, or the exception itself.</summary>
    private static Exception Unwrapped(Exception e) => e is AggregateException { InnerExceptions.Count: > 0 } a ? a.InnerExceptions[0] : e;
}
