using SlidePlugin.Protos.V1;

namespace SlidePlugin.Sidecar.Services;

/// <summary>
/// What ListSlides answers: the files under the slide roots that look like slides (by extension: opening every file
/// to ask OpenSlide would make a listing as slow as the slowest file), and the models and encoders AnalyzeSlide takes.
/// </summary>
internal static class SlideFiles
{
    /// <summary>The most files listed; a root with more is listed in part (ListSlidesResponse.truncated).</summary>
    public const int MaxFiles = 10_000;

    /// <summary>How deep under a root files are looked for.</summary>
    private const int MaxDepth = 8;

    /// <summary>Lists the roots of <paramref name="roots"/>.</summary>
    public static ListSlidesResponse List(SlideRoots roots)
    {
        var response = new ListSlidesResponse();
        var slides = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var models = new SortedSet<string>(StringComparer.Ordinal);
        var encoders = new SortedSet<string>(StringComparer.Ordinal);
        // Hidden files and symlinked folders are skipped: a link could loop or lead outside the root.
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            MaxRecursionDepth = MaxDepth,
            IgnoreInaccessible = true,
            AttributesToSkip = FileAttributes.Hidden | FileAttributes.ReparsePoint,
        };
        for (int r = 0; r < roots.Roots.Count; r++)
        {
            string root = roots.Roots[r];
            foreach (string file in Directory.EnumerateFiles(root, "*", options))
            {
                string relative = Path.GetRelativePath(root, file);
                // A request's relative path names the first root that holds it: name a file a later root shadows absolutely.
                string name = roots.Roots.Take(r).Any(earlier => File.Exists(Path.Combine(earlier, relative))) ? file : relative;
                string extension = Path.GetExtension(file);
                bool slide = Engine.Slides.Slide.FileExtensions.Contains(extension);
                bool model = !slide && IsCarded(file, extension, ".safetensors");
                bool encoder = !slide && IsCarded(file, extension, ".onnx");
                if (!(slide || model || encoder))
                {
                    continue;
                }

                if (slides.Count + models.Count + encoders.Count >= MaxFiles)
                {
                    response.Truncated = true;
                    break;
                }

                if (slide)
                {
                    slides[name] = new FileInfo(file).Length;
                }
                else
                {
                    (model ? models : encoders).Add(name);
                }
            }
        }

        response.Slides.AddRange(slides.Select(s => new SlideFile { Path = s.Key, SizeBytes = s.Value }));
        response.Models.AddRange(models);
        response.Encoders.AddRange(encoders);
        return response;
    }

    /// <summary>A checkpoint or encoder: its extension, and its card (NAME.json) beside it.</summary>
    private static bool IsCarded(string file, string extension, string wanted) =>
        extension.Equals(wanted, StringComparison.OrdinalIgnoreCase) && File.Exists(Path.ChangeExtension(file, ".json"));
}
