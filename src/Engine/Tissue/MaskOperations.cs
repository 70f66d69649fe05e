using System.Numerics;
using System.Runtime.CompilerServices;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Tissue;

/// <summary>The image operations tissue detection is built from, on 8-bit single-channel images (row-major).</summary>
internal static class MaskOperations
{
    /// <summary>HSV saturation as OpenCV computes it for 8-bit: 255 * (max - min) / max, 0 where max is 0.</summary>
    public static byte[] Saturation(ReadOnlySpan<byte> rgb, int pixels, int bands)
    {
        var saturation = new byte[pixels];
        for (int i = 0, o = 0; i < pixels; i++, o += bands)
        {
            int r = rgb[o], g = rgb[o + 1], b = rgb[o + 2];
            int max = Math.Max(r, Math.Max(g, b));
            int min = Math.Min(r, Math.Min(g, b));
            saturation[i] = max == 0 ? (byte)0 : (byte)(((255 * (max - min)) + (max / 2)) / max);
        }

        return saturation;
    }

    /// <summary>Luma (ITU-R 601) of RGB pixels.</summary>
    public static byte[] Grey(ReadOnlySpan<byte> rgb, int pixels, int bands)
    {
        var grey = new byte[pixels];
        for (int i = 0, o = 0; i < pixels; i++, o += bands)
        {
            grey[i] = (byte)(((rgb[o] * 299) + (rgb[o + 1] * 587) + (rgb[o + 2] * 114) + 500) / 1000);
        }

        return grey;
    }

    /// <summary>Median filter with a square odd kernel, edges replicated; a sliding histogram per row (Huang).</summary>
    public static byte[] Median(byte[] image, int width, int height, int kernel)
    {
        if (kernel <= 1)
        {
            return (byte[])image.Clone();
        }

        int r = kernel / 2;
        int half = (kernel * kernel / 2) + 1;
        var result = new byte[image.Length];
        // Rows are independent: bands of them on the engine's threads, each with its own sliding histogram (Huang), whose
        // median moves by the counts that enter and leave instead of being searched from 0 at each pixel.
        int bands = Math.Max(1, Math.Min(EngineThreads.Count, height / 64));
        Parallel.For(0, bands, EngineThreads.ParallelOptions, band =>
        {
            Span<int> histogram = stackalloc int[256];
            for (int y = (int)((long)height * band / bands), end = (int)((long)height * (band + 1) / bands); y < end; y++)
            {
                histogram.Clear();
                for (int dy = -r; dy <= r; dy++)
                {
                    int row = Math.Clamp(y + dy, 0, height - 1) * width;
                    for (int dx = -r; dx <= r; dx++)
                    {
                        histogram[image[row + Math.Clamp(dx, 0, width - 1)]]++;
                    }
                }

                // median: the smallest value whose cumulative count reaches half; below: the count of smaller values.
                int median = 0, below = 0;
                while (below + histogram[median] < half)
                {
                    below += histogram[median++];
                }

                result[y * width] = (byte)median;
                for (int x = 1; x < width; x++)
                {
                    int leaving = Math.Clamp(x - r - 1, 0, width - 1);
                    int entering = Math.Clamp(x + r, 0, width - 1);
                    for (int dy = -r; dy <= r; dy++)
                    {
                        int row = Math.Clamp(y + dy, 0, height - 1) * width;
                        byte gone = image[row + leaving], come = image[row + entering];
                        histogram[gone]--;
                        histogram[come]++;
                        below += (come < median ? 1 : 0) - (gone < median ? 1 : 0);
                    }

                    while (below >= half)
                    {
                        below -= histogram[--median];
                    }

                    while (below + histogram[median] < half)
                    {
                        below += histogram[median++];
                    }

                    result[(y * width) + x] = (byte)median;
                }
            }
        });

        return result;
    }

    /// <summary>Otsu's threshold: the level t maximising between-class variance of (&lt;= t) vs (&gt; t).</summary>
    public static int Otsu(byte[] image)
    {
        Span<long> histogram = stackalloc long[256];
        foreach (byte value in image)
        {
            histogram[value]++;
        }

        long total = image.Length;
        double sumAll = 0;
        for (int i = 0; i < 256; i++)
        {
            sumAll += i * (double)histogram[i];
        }

        double sumBelow = 0, best = -1;
        long below = 0;
        int threshold = 0;
        for (int t = 0; t < 256; t++)
        {
            below += histogram[t];
            if (below == 0)
            {
                continue;
            }

            long above = total - below;
            if (above == 0)
            {
                break;
            }

            sumBelow += t * (double)histogram[t];
            double meanBelow = sumBelow / below, meanAbove = (sumAll - sumBelow) / above;
            double between = (double)below * above * (meanBelow - meanAbove) * (meanBelow - meanAbove);
            if (between > best)
            {
                best = between;
                threshold = t;
            }
        }

        return threshold;
    }

    /// <summary>Binary dilation or erosion with a square kernel of ones (separable max/min); outside never counts (OpenCV's default border).</summary>
    public static byte[] SquareMorphology(byte[] mask, int width, int height, int kernel, bool dilate)
    {
        if (kernel <= 1)
        {
            return (byte[])mask.Clone();
        }

        byte[] horizontal = MinMaxPass(mask, width, height, kernel, dilate, alongRows: true);
        return MinMaxPass(horizontal, width, height, kernel, dilate, alongRows: false);
    }

    /// <summary>
    /// One 1-D pass of the separable max (dilate) or min (erode) filter, along rows or columns: the source shifted by
    /// each kernel offset is folded into the result where the shifted pixel is inside. Outside pixels are the neutral
    /// value of a 0/1 mask (0 for max, 1 for min), so skipping them is the same as counting them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per slide: tier-0 code would cost more than the work
    private static byte[] MinMaxPass(byte[] source, int width, int height, int kernel, bool dilate, bool alongRows)
    {
        int before = (kernel - 1) / 2, after = kernel / 2; // OpenCV's anchor for even kernels
        var result = (byte[])source.Clone();                // offset 0
        for (int d = -before; d <= after; d++)
        {
            if (d == 0)
            {
                continue;
            }

            if (alongRows)
            {
                int from = Math.Max(0, -d), to = Math.Min(width, width - d);
                for (int row = 0; row < source.Length && to > from; row += width)
                {
                    Fold(result.AsSpan(row + from, to - from), source.AsSpan(row + from + d, to - from), dilate);
                }
            }
            else
            {
                int from = Math.Max(0, -d), to = Math.Min(height, height - d);
                if (to > from)
                {
                    Fold(result.AsSpan(from * width, (to - from) * width), source.AsSpan((from + d) * width, (to - from) * width), dilate);
                }
            }
        }

        return result;
    }

    /// <summary>destination[i] = max (or min) of destination[i] and source[i].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Fold(Span<byte> destination, ReadOnlySpan<byte> source, bool max)
    {
        int i = 0;
        for (; i <= destination.Length - Vector<byte>.Count; i += Vector<byte>.Count)
        {
            var a = new Vector<byte>(destination[i..]);
            var b = new Vector<byte>(source[i..]);
            (max ? Vector.Max(a, b) : Vector.Min(a, b)).CopyTo(destination[i..]);
        }

        for (; i < destination.Length; i++)
        {
            destination[i] = max ? Math.Max(destination[i], source[i]) : Math.Min(destination[i], source[i]);
        }
    }

    /// <summary>
    /// Labels connected components of pixels equal to <paramref name="value"/> (8-connected for 1, 4-connected
    /// for 0, the pairing that makes holes and pieces consistent). Returns labels (0 = not that value) and sizes.
    /// </summary>
    public static (int[] Labels, List<int> Sizes, List<bool> TouchesBorder) Components(byte[] mask, int width, int height, byte value)
    {
        var labels = new int[mask.Length];
        var sizes = new List<int> { 0 };
        var touches = new List<bool> { false };
        var stack = new Stack<int>();
        bool eight = value != 0;
        for (int start = 0; start < mask.Length; start++)
        {
            if (mask[start] != value || labels[start] != 0)
            {
                continue;
            }

            int label = sizes.Count;
            int size = 0;
            bool border = false;
            labels[start] = label;
            stack.Push(start);
            while (stack.Count > 0)
            {
                int index = stack.Pop();
                size++;
                int x = index % width, y = index / width;
                border |= x == 0 || y == 0 || x == width - 1 || y == height - 1;
                for (int dy = -1; dy <= 1; dy++)
                {
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        if ((dx == 0 && dy == 0) || (!eight && dx != 0 && dy != 0))
                        {
                            continue;
                        }

                        int nx = x + dx, ny = y + dy;
                        if (nx < 0 || ny < 0 || nx >= width || ny >= height)
                        {
                            continue;
                        }

                        int neighbour = (ny * width) + nx;
                        if (mask[neighbour] == value && labels[neighbour] == 0)
                        {
                            labels[neighbour] = label;
                            stack.Push(neighbour);
                        }
                    }
                }
            }

            sizes.Add(size);
            touches.Add(border);
        }

        return (labels, sizes, touches);
    }
}
