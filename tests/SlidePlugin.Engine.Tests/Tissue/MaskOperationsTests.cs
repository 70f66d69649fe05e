using SlidePlugin.Engine.Tissue;

namespace SlidePlugin.Engine.Tests.Tissue;

public class MaskOperationsTests
{
    private static int[] Labels(string[] rows, out int width, out int height, out int count)
    {
        width = rows[0].Length;
        height = rows.Length;
        byte[] mask = rows.SelectMany(r => r.Select(c => c == '#' ? (byte)1 : (byte)0)).ToArray();
        (int[] labels, List<int> sizes, _) = MaskOperations.Components(mask, width, height, 1);
        count = sizes.Count;
        return labels;
    }

    [Fact]
    public void Trace_SquareWithHole_ExteriorAndHoleRings()
    {
        string[] rows = ["......", ".####.", ".#..#.", ".#..#.", ".####.", "......"];
        int[] labels = Labels(rows, out int w, out int h, out int count);

        List<List<(int X, int Y)>>[] rings = ContourTracer.Trace(labels, w, h, count);

        Assert.Equal(2, count); // background label 0 + one piece
        List<List<(int X, int Y)>> piece = rings[1].OrderByDescending(ContourTracer.Area).ToList();
        Assert.Equal(2, piece.Count);
        Assert.Equal(16, ContourTracer.Area(piece[0]));
        Assert.Equal(4, ContourTracer.Area(piece[1]));
        Assert.Equal([(1, 1), (5, 1), (5, 5), (1, 5)], piece[0]);
    }

    [Fact]
    public void Trace_DiagonalPixels_OneEightConnectedRing()
    {
        string[] rows = ["#.", ".#"];
        int[] labels = Labels(rows, out int w, out int h, out int count);

        List<List<(int X, int Y)>>[] rings = ContourTracer.Trace(labels, w, h, count);

        Assert.Equal(2, count);
        Assert.Single(rings[1]);
        Assert.Equal(2, ContourTracer.Area(rings[1][0]));
    }

    [Fact]
    public void Components_FourConnectedBackground_DiagonalGapIsTwoHoles()
    {
        byte[] mask = [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1];

        (_, List<int> sizes, List<bool> border) = MaskOperations.Components(mask, 4, 4, 0);

        Assert.Equal([0, 1, 1], sizes);
        Assert.Equal([false, false, false], border);
    }

    [Fact]
    public void Otsu_TwoClusters_ThresholdBetweenThem()
    {
        byte[] image = [.. Enumerable.Repeat((byte)10, 500), .. Enumerable.Repeat((byte)200, 300)];

        int threshold = MaskOperations.Otsu(image);

        Assert.InRange(threshold, 10, 199);
    }

    [Fact]
    public void Median_SaltNoise_Removed()
    {
        var image = new byte[25];
        image[12] = 255;

        byte[] filtered = MaskOperations.Median(image, 5, 5, 3);

        Assert.All(filtered, v => Assert.Equal(0, v));
    }

    [Theory]
    [InlineData(37, 23, 7, 3)]     // fewer rows than a band: one band
    [InlineData(301, 290, 7, 11)]  // several bands, values spread wide
    [InlineData(130, 129, 5, 255)] // the whole byte range
    [InlineData(64, 200, 3, 2)]    // few distinct values: the median moves by whole runs
    public void Median_RandomImage_EqualsTheSortedWindowsMiddle(int width, int height, int kernel, int spread)
    {
        var random = new Random(width * height);
        byte[] image = [.. Enumerable.Range(0, width * height).Select(i => (byte)Math.Min(255, ((i / 97 % 5) * 30) + random.Next(spread + 1)))];

        byte[] filtered = MaskOperations.Median(image, width, height, kernel);

        // The middle of each window sorted, edges replicated (OpenCV's medianBlur border).
        int r = kernel / 2;
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                var window = new List<byte>();
                for (int dy = -r; dy <= r; dy++)
                {
                    for (int dx = -r; dx <= r; dx++)
                    {
                        window.Add(image[(Math.Clamp(y + dy, 0, height - 1) * width) + Math.Clamp(x + dx, 0, width - 1)]);
                    }
                }

                window.Sort();
                Assert.True(window[window.Count / 2] == filtered[(y * width) + x], $"({x}, {y}): {filtered[(y * width) + x]}, the window's median is {window[window.Count / 2]}");
            }
        }
    }

    [Fact]
    public void Close_GapOfOnePixel_Joined()
    {
        byte[] mask = [1, 1, 0, 1, 1];

        byte[] closed = MaskOperations.SquareMorphology(MaskOperations.SquareMorphology(mask, 5, 1, 3, dilate: true), 5, 1, 3, dilate: false);

        Assert.Equal([1, 1, 1, 1, 1], closed); // outside never erodes the ends (OpenCV's default border)
    }

    [Theory]
    [InlineData(37, 23, 4, true)]
    [InlineData(37, 23, 4, false)]
    [InlineData(70, 5, 3, true)]
    [InlineData(70, 5, 3, false)]
    [InlineData(3, 40, 7, true)]   // kernel wider than the mask
    [InlineData(3, 40, 7, false)]
    public void SquareMorphology_RandomMask_SameAsTheDefinition(int width, int height, int kernel, bool dilate)
    {
        var random = new Random(width * 1000 + height);
        byte[] mask = [.. Enumerable.Range(0, width * height).Select(_ => (byte)(random.Next(3) == 0 ? 1 : 0))];

        byte[] result = MaskOperations.SquareMorphology(mask, width, height, kernel, dilate);

        // The definition: max (min) over the kernel's pixels inside the mask, anchored as OpenCV anchors even kernels.
        int before = (kernel - 1) / 2, after = kernel / 2;
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                var inside = new List<byte>();
                for (int dy = -before; dy <= after; dy++)
                {
                    for (int dx = -before; dx <= after; dx++)
                    {
                        if (x + dx >= 0 && x + dx < width && y + dy >= 0 && y + dy < height)
                        {
                            inside.Add(mask[((y + dy) * width) + x + dx]);
                        }
                    }
                }

                Assert.Equal(dilate ? inside.Max() : inside.Min(), result[(y * width) + x]);
            }
        }
    }

    [Fact]
    public void Saturation_PureAndGreyColours_AsOpenCv()
    {
        byte[] rgb = [255, 0, 0, 128, 128, 128, 200, 100, 100];

        byte[] s = MaskOperations.Saturation(rgb, 3, 3);

        Assert.Equal([255, 0, 128], s);
    }
}
