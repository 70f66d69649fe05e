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
            or ImageCodecException or IOException or ArgumentException or Cohorts.CohortException or Engine.Encoders.EncoderException)
        {
            stderr.WriteLine($"slideplugin: {Unwrapped(e).Message}");
            return ExitCodes.Failure;
        }
    }

    /// <summary>A <c>--region</c> value, or the whole of <paramref name="slide"/> when none was given.</summary>
    /// <exception cref="ArgumentException">Not four non-negative integers.</exception>
    public static (long X, long Y, long Width, long Height) RegionOrWholeSlide(string? text, Engine.Slides.Slide slide) =>
        text is null ? (0, 0, slide.Dimensions.Width, slide.Dimensions.Height) : ParseRegion(text);

    /// <summary>A <c>--region</c> value: "x,y,width,height" in level-0 pixels.</summary>
    /// <exception cref="ArgumentException">Not four non-negative integers.</exception>
    private static (long X, long Y, long Width, long Height) ParseRegion(string text)
    {
        long[] values = [.. text.Split(',').Select(v => long.TryParse(v.Trim(), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out long n) ? n : -1)];
        return values.Length == 4 && values.All(v => v >= 0)
            ? (values[0], values[1], values[2], values[3])
            : throw new ArgumentException($"--region '{text}' is not x,y,width,height in level-0 pixels.");
    }

    /// <summary>The first failure inside a parallel loop, or the exception itself.</summary>
    private static Exception Unwrapped(Exception e) => e is AggregateException { InnerExceptions.Count: > 0 } a ? a.InnerExceptions[0] : e;
}
