using SlidePlugin.Engine.Slides;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>Opening a slide for a CLI verb: failures become one clear line on stderr, never a stack trace.</summary>
internal static class CliSlides
{
    /// <summary>Opens <paramref name="file"/> and resolves its resolution; on failure writes why and returns false.</summary>
    public static bool TryOpen(FileInfo file, double? mppOverride, TextWriter stderr, out Slide slide, out SlideResolution resolution, out double mpp)
    {
        slide = null!;
        resolution = null!;
        mpp = 0;
        try
        {
            slide = Slide.Open(file.FullName);
        }
        catch (SlideException e)
        {
            stderr.WriteLine($"slideplugin: {e.Message}");
            return false;
        }

        try
        {
            mpp = slide.RequireMpp(mppOverride, out resolution);
            return true;
        }
        catch (SlideException e)
        {
            slide.Dispose();
            slide = null!;
            stderr.WriteLine($"slideplugin: {e.Message}");
            return false;
        }
    }
}
