namespace SlidePlugin.Engine.Tissue;

/// <summary>
/// Traces the boundaries of labelled pieces of a binary mask along pixel edges. Every edge between a
/// piece pixel and a non-piece pixel (or the image border) is directed so the piece lies on its right;
/// following edges end to end gives closed rings: one exterior per piece and one per hole. Where two
/// diagonal pixels touch, the walk turns left (away from the pixel it came along), keeping 8-connected
/// pixels in one ring.
/// Coordinates are pixel corners: x = column, y = row.
/// </summary>
internal static class ContourTracer
{
    private readonly record struct Edge(int X, int Y, int Dx, int Dy, int Label);

    /// <summary>Rings per label (index = label); each ring is a list of corners without the closing repeat.</summary>
    public static List<List<(int X, int Y)>>[] Trace(int[] labels, int width, int height, int labelCount)
    {
        var edges = new List<Edge>();
        var outgoing = new Dictionary<long, List<int>>();
        int Label(int x, int y) => x < 0 || y < 0 || x >= width || y >= height ? 0 : labels[(y * width) + x];
        void Add(int x, int y, int dx, int dy, int label)
        {
            long key = Key(x, y);
            if (!outgoing.TryGetValue(key, out List<int>? list))
            {
                outgoing[key] = list = new List<int>(1);
            }

            list.Add(edges.Count);
            edges.Add(new Edge(x, y, dx, dy, label));
        }

        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int label = labels[(y * width) + x];
                if (label == 0)
                {
                    continue;
                }

                if (Label(x, y - 1) != label) Add(x, y, 1, 0, label);          // top, left to right
                if (Label(x + 1, y) != label) Add(x + 1, y, 0, 1, label);      // right, downwards
                if (Label(x, y + 1) != label) Add(x + 1, y + 1, -1, 0, label); // bottom, right to left
                if (Label(x - 1, y) != label) Add(x, y + 1, 0, -1, label);     // left, upwards
            }
        }

        var rings = new List<List<(int X, int Y)>>[labelCount];
        for (int i = 0; i < labelCount; i++)
        {
            rings[i] = [];
        }

        var used = new bool[edges.Count];
        for (int first = 0; first < edges.Count; first++)
        {
            if (used[first])
            {
                continue;
            }

            var ring = new List<(int X, int Y)>();
            int current = first;
            while (!used[current])
            {
                used[current] = true;
                Edge edge = edges[current];
                ring.Add((edge.X, edge.Y));
                int endX = edge.X + edge.Dx, endY = edge.Y + edge.Dy;
                current = Next(outgoing[Key(endX, endY)], edge, edges, used) ?? first;
            }

            rings[edges[first].Label].Add(Simplify(ring));
        }

        return rings;
    }

    /// <summary>The unused outgoing edge of the same label to follow: left turn first (joins diagonal pixels), then straight, then right.</summary>
    private static int? Next(List<int> candidates, Edge incoming, List<Edge> edges, bool[] used)
    {
        (int Dx, int Dy)[] preference = [(incoming.Dy, -incoming.Dx), (incoming.Dx, incoming.Dy), (-incoming.Dy, incoming.Dx)];
        foreach ((int dx, int dy) in preference)
        {
            foreach (int candidate in candidates)
            {
                Edge e = edges[candidate];
                if (!used[candidate] && e.Label == incoming.Label && e.Dx == dx && e.Dy == dy)
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    /// <summary>Drops corners where the ring goes straight on.</summary>
    private static List<(int X, int Y)> Simplify(List<(int X, int Y)> ring)
    {
        var kept = new List<(int X, int Y)>(ring.Count / 2);
        for (int i = 0; i < ring.Count; i++)
        {
            (int X, int Y) previous = ring[(i + ring.Count - 1) % ring.Count], point = ring[i], next = ring[(i + 1) % ring.Count];
            bool straight = (point.X - previous.X) * (next.Y - point.Y) == (point.Y - previous.Y) * (next.X - point.X);
            if (!straight)
            {
                kept.Add(point);
            }
        }

        return kept;
    }

    /// <summary>
    /// The 8-connected pieces of pixels equal to <paramref name="value"/> in <paramref name="mask"/>, each as its exterior
    /// ring, its hole rings and its pixel count, in label order.
    /// </summary>
    public static List<(List<(int X, int Y)> Exterior, List<List<(int X, int Y)>> Holes, int Pixels)> Pieces(byte[] mask, int width, int height, byte value)
    {
        (int[] labels, List<int> sizes, _) = MaskOperations.Components(mask, width, height, value);
        List<List<(int X, int Y)>>[] rings = Trace(labels, width, height, sizes.Count);
        var pieces = new List<(List<(int X, int Y)>, List<List<(int X, int Y)>>, int)>();
        for (int label = 1; label < sizes.Count; label++)
        {
            List<List<(int X, int Y)>> pieceRings = [.. rings[label].OrderByDescending(Area)];   // the exterior encloses its holes
            if (pieceRings.Count > 0)
            {
                pieces.Add((pieceRings[0], pieceRings.GetRange(1, pieceRings.Count - 1), sizes[label]));
            }
        }

        return pieces;
    }

    /// <summary>Absolute shoelace area of a ring, in pixels.</summary>
    public static double Area(IReadOnlyList<(int X, int Y)> ring)
    {
        long twice = 0;
        for (int i = 0; i < ring.Count; i++)
        {
            (int X, int Y) a = ring[i], b = ring[(i + 1) % ring.Count];
            twice += ((long)a.X * b.Y) - ((long)b.X * a.Y);
        }

        return Math.Abs(twice) / 2.0;
    }

    private static long Key(int x, int y) => ((long)x << 32) | (uint)y;
}
