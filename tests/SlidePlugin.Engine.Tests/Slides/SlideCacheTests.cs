using SlidePlugin.Engine.Slides;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Slides;

public class SlideCacheTests
{
    private static readonly string[] Slides =
        ["CMU-1-Small-Region.svs", "small.svs", "boxes.tiff"];

    [Fact]
    public void Open_SamePathTwice_SameSlideInstance()
    {
        using var cache = new SlideCache(4);
        string path = TestData.Path("slides", Slides[0]);

        using SlideLease first = cache.Open(path);
        using SlideLease second = cache.Open(path);

        Assert.Same(first.Slide, second.Slide);
        Assert.Equal(1, cache.Count);
    }

    [Fact]
    public void Open_PastCapacity_LeastRecentlyUsedClosedButNotWhileLeased()
    {
        using var cache = new SlideCache(2);
        SlideLease held = cache.Open(TestData.Path("slides", Slides[0]));
        using (cache.Open(TestData.Path("slides", Slides[1])))
        {
        }

        using (cache.Open(TestData.Path("slides", Slides[2])))
        {
        }

        // The first slide left the cache but is still leased: it must still read.
        Assert.Equal(2, cache.Count);
        Assert.Equal(2, held.Slide.ReadRegion(0, 0, 0, 2, 2).Width);
        Slide evicted = held.Slide;
        held.Dispose();
        Assert.Throws<ObjectDisposedException>(() => evicted.ReadRegion(0, 0, 0, 2, 2));
        using SlideLease reopened = cache.Open(TestData.Path("slides", Slides[0]));
        Assert.NotSame(evicted, reopened.Slide);
    }

    [Fact]
    public void Invalidate_LatchedSlide_NextOpenReopens()
    {
        using var cache = new SlideCache(4);
        string path = TestData.Path("slides", "unreadable.svs");
        Slide latched;
        using (SlideLease lease = cache.Open(path))
        {
            latched = lease.Slide;
            Assert.Throws<SlideException>(() => lease.Slide.ReadRegion(0, 0, 0, 4, 4));
            cache.Invalidate(lease.Slide);
        }

        using SlideLease fresh = cache.Open(path);

        Assert.NotSame(latched, fresh.Slide);
        Assert.Equal(16, fresh.Slide.Dimensions.Width); // a fresh handle: no latched error yet
    }

    [Fact]
    public void Open_FileChangedOnDisk_Reopened()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-cache").FullName;
        try
        {
            string path = Path.Combine(folder, "slide.tiff");
            File.Copy(TestData.Path("slides", "boxes.tiff"), path);
            using var cache = new SlideCache(4);
            Slide before;
            using (SlideLease lease = cache.Open(path))
            {
                before = lease.Slide;
            }

            File.Copy(TestData.Path("slides", "CMU-1-Small-Region.svs"), path, overwrite: true);
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(1));
            using SlideLease after = cache.Open(path);

            Assert.NotSame(before, after.Slide);
            Assert.Equal(2220, after.Slide.Dimensions.Width);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Open_MissingFile_NotFound()
    {
        using var cache = new SlideCache(4);

        SlideException error = Assert.Throws<SlideException>(() => cache.Open("/nonexistent/slide.svs"));

        Assert.Equal(SlideErrorKind.NotFound, error.Kind);
        Assert.Equal(0, cache.Count);
    }
}
