using SlidePlugin.Engine.Imaging;

namespace SlidePlugin.Tests;

/// <summary>A rectangle in level-0 pixels.</summary>
internal readonly record struct Level0Rect(int X, int Y, int Width, int Height);

/// <summary>
/// Large slides made by libvips for tests and benchmarks: glass-coloured background with rectangular
/// tissue-like blobs (stain colours with texture at several scales, so tissue detection accepts them),
/// written as JPEG-tiled pyramidal TIFF with TIFF resolution tags. Files are cached in the temp folder
/// by their parameters and written atomically, so parallel test processes may share them.
/// </summary>
internal static class SyntheticSlides
{
    /// <summary>Level-0 resolution of the generated slides, in µm per pixel (a 40x scan).</summary>
    public const double Mpp = 0.25;

    /// <summary>The 30k x 30k test slide: three blobs on edges that are multiples of 1024 px, so every grid at 0.25 x 2^k mpp splits cleanly.</summary>
    public static readonly IReadOnlyList<Level0Rect> LargeBlobs =
    [
        new(4096, 4096, 6144, 4096),
        new(16384, 8192, 4096, 8192),
        new(8192, 20480, 10240, 3072),
    ];

    private static readonly Lock Gate = new();

    /// <summary>
    /// Slide <paramref name="index"/> of a labelled cohort for slide-level training: 3072² px with one tissue blob, shifted
    /// per slide so that no two slides are one file; odd ones carry the tumour-like texture over a 768² region whose place
    /// changes from slide to slide (so position cannot stand in for content).
    /// </summary>
    public static (string Path, bool Tumour, Level0Rect Planted) CohortSlide(int index)
    {
        bool tumour = index % 2 == 1;
        int shift = 64 * (index % 8);
        var planted = new Level0Rect(512 + shift + (768 * (index / 2 % 3)), 512 + (768 * ((index / 2 + 1) % 3)), 768, 768);
        return (Generate(3072, 3072, [new Level0Rect(512 + shift, 512, 2048, 2048)], tumour ? [planted] : null), tumour, planted);
    }

    /// <summary>The path of the 30,000 x 30,000 slide with <see cref="LargeBlobs"/>, generated on first use.</summary>
    public static string Large() => Generate(30000, 30000, LargeBlobs);

    /// <summary>
    /// A <paramref name="width"/> x <paramref name="height"/> slide with tissue in <paramref name="blobs"/>, and a tumour-like
    /// texture (dense, large, dark nuclei) planted over <paramref name="planted"/>: the class a MIL model should find.
    /// </summary>
    public static string Generate(int width, int height, IReadOnlyList<Level0Rect> blobs, IReadOnlyList<Level0Rect>? planted = null)
    {
        planted ??= [];
        string key = $"{width}x{height}-" + string.Join('-', blobs.Select(b => $"{b.X}.{b.Y}.{b.Width}.{b.Height}"))
            + (planted.Count == 0 ? "" : "-planted-" + string.Join('-', planted.Select(b => $"{b.X}.{b.Y}.{b.Width}.{b.Height}")));
        // Bump the version whenever what is drawn changes: cached files are matched by their parameters only.
        string folder = Path.Combine(Path.GetTempPath(), "slideplugin-synthetic-v1");
        string path = Path.Combine(folder, $"synthetic-{(uint)StableHash(key):x8}.tiff");
        lock (Gate)
        {
            if (File.Exists(path))
            {
                return path;
            }

            Directory.CreateDirectory(folder);
            using ImageCanvas canvas = ImageCanvas.Create(width, height, 242, 240, 241);
            Raster[] patches = Enumerable.Range(0, 4).Select(TissuePatch).ToArray();
            int next = 0;
            foreach (Level0Rect blob in blobs)
            {
                for (int y = blob.Y; y < blob.Y + blob.Height; y += PatchSize)
                {
                    for (int x = blob.X; x < blob.X + blob.Width; x += PatchSize)
                    {
                        Raster patch = patches[next++ % patches.Length];
                        int w = Math.Min(PatchSize, blob.X + blob.Width - x), h = Math.Min(PatchSize, blob.Y + blob.Height - y);
                        canvas.Insert(w == PatchSize && h == PatchSize ? patch : Crop(patch, w, h), x, y);
                    }
                }
            }

            Raster tumour = TissuePatch(7, nuclei: 9000, radius: (6, 12));
            foreach (Level0Rect region in planted)
            {
                for (int y = region.Y; y < region.Y + region.Height; y += PatchSize)
                {
                    for (int x = region.X; x < region.X + region.Width; x += PatchSize)
                    {
                        int w = Math.Min(PatchSize, region.X + region.Width - x), h = Math.Min(PatchSize, region.Y + region.Height - y);
                        canvas.Insert(w == PatchSize && h == PatchSize ? tumour : Crop(tumour, w, h), x, y);
                    }
                }
            }

            canvas.SaveTiffPyramid(path, new TiffPyramidOptions { Mpp = Mpp, Quality = 80 });
            return path;
        }
    }

    private const int PatchSize = 1024;

    /// <summary>H&amp;E-like texture: eosin pink with 32 px blocks of varying density and dark haematoxylin nuclei.</summary>
    private static Raster TissuePatch(int seed) => TissuePatch(seed, nuclei: 900, radius: (4, 9));

    private static Raster TissuePatch(int seed, int nuclei, (int Min, int Max) radius)
    {
        var random = new Random(seed);
        var pixels = new byte[PatchSize * PatchSize * 3];
        var block = new int[(PatchSize / 32) * (PatchSize / 32)];
        for (int i = 0; i < block.Length; i++)
        {
            block[i] = random.Next(-35, 36);
        }

        for (int y = 0; y < PatchSize; y++)
        {
            for (int x = 0; x < PatchSize; x++)
            {
                int shade = block[((y / 32) * (PatchSize / 32)) + (x / 32)] + random.Next(-12, 13);
                int o = ((y * PatchSize) + x) * 3;
                pixels[o] = Clamp(220 + shade);
                pixels[o + 1] = Clamp(140 + shade);
                pixels[o + 2] = Clamp(185 + shade);
            }
        }

        for (int nucleus = 0; nucleus < nuclei; nucleus++)
        {
            int cx = random.Next(PatchSize), cy = random.Next(PatchSize), r = random.Next(radius.Min, radius.Max);
            for (int y = Math.Max(0, cy - r); y < Math.Min(PatchSize, cy + r); y++)
            {
                for (int x = Math.Max(0, cx - r); x < Math.Min(PatchSize, cx + r); x++)
                {
                    if (((x - cx) * (x - cx)) + ((y - cy) * (y - cy)) <= r * r)
                    {
                        int o = ((y * PatchSize) + x) * 3;
                        (pixels[o], pixels[o + 1], pixels[o + 2]) = ((byte)90, (byte)50, (byte)130);
                    }
                }
            }
        }

        return new Raster(PatchSize, PatchSize, 3, pixels);
    }

    private static Raster Crop(Raster source, int width, int height)
    {
        var pixels = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            source.Pixels.AsSpan(y * source.Width * 3, width * 3).CopyTo(pixels.AsSpan(y * width * 3));
        }

        return new Raster(width, height, 3, pixels);
    }

    private static byte Clamp(int value) => (byte)Math.Clamp(value, 0, 255);

    // string.GetHashCode is randomised per process; the cache key must be stable across processes.
    private static int StableHash(string text)
    {
        unchecked
        {
            int hash = (int)2166136261;
            foreach (char c in text)
            {
                hash = (hash ^ c) * 16777619;
            }

            return hash;
        }
    }
}
