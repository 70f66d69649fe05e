namespace SlidePlugin.Tests;

/// <summary>
/// The shared test data folder (<c>../shared/testdata</c> beside the repository, or
/// <c>SLIDEPLUGIN_TESTDATA</c>). A missing folder fails the test that needs it: it is never a skip.
/// </summary>
internal static class TestData
{
    private static readonly Lazy<string> RootPath = new(Locate);
    private static readonly Lazy<string> RepositoryRootPath = new(FindRepositoryRoot);

    /// <summary>The repository root (the folder holding SlidePlugin.sln); looked up only when asked, so a copied benchmark runs with SLIDEPLUGIN_TESTDATA alone.</summary>
    public static string RepositoryRoot => RepositoryRootPath.Value;

    /// <summary>The test data folder; throws with a clear message when it is missing.</summary>
    public static string Root => RootPath.Value;

    /// <summary>A path inside the test data folder, e.g. <c>Path("slides", "CMU-1-Small-Region.svs")</c>.</summary>
    public static string Path(params string[] parts)
    {
        string path = System.IO.Path.Combine([Root, .. parts]);
        if (!File.Exists(path) && !Directory.Exists(path))
        {
            throw new FileNotFoundException($"Test data file '{path}' is missing; see ../shared/testdata/README.md.", path);
        }

        return path;
    }

    private static string Locate()
    {
        string? configured = Environment.GetEnvironmentVariable("SLIDEPLUGIN_TESTDATA");
        string path = string.IsNullOrWhiteSpace(configured)
            ? System.IO.Path.GetFullPath(System.IO.Path.Combine(RepositoryRoot, "..", "shared", "testdata"))
            : System.IO.Path.GetFullPath(configured);
        if (!Directory.Exists(path))
        {
            throw new DirectoryNotFoundException(
                $"Test data folder '{path}' not found. Put shared/testdata beside the repository or set SLIDEPLUGIN_TESTDATA.");
        }

        return path;
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "SlidePlugin.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"No SlidePlugin.sln above '{AppContext.BaseDirectory}'.");
    }
}
