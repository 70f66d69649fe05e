namespace SlidePlugin.Engine.Tensors;

/// <summary>Reshaping, transposing and joining tensors.</summary>
public static partial class Functional
{
    /// <summary>The same elements with another shape; one dimension may be -1 (inferred). Shares storage.</summary>
    public static Tensor Reshape(Tensor x, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(x);
        int[] resolved = ResolveShape(x, shape);
        Tensor y = x.View(resolved);
        if (Autograd.ShouldRecord(x))
        {
            Autograd.Record("reshape", y, [x], gy => Accumulate(x.GradData(), gy.Data));
        }

        return y;
    }

    /// <summary>Flattens dimensions from <paramref name="startDimension"/> on: [N, C, H, W] → [N, C·H·W].</summary>
    public static Tensor Flatten(Tensor x, int startDimension = 1)
    {
        ArgumentNullException.ThrowIfNull(x);
        int start = x.NormalizeDimension(startDimension);
        int[] shape = new int[start + 1];
        for (int i = 0; i < start; i++)
        {
            shape[i] = x.Shape[i];
        }

        shape[start] = -1;
        return Reshape(x, shape);
    }

    /// <summary>Swaps two dimensions (a copy, so the result stays contiguous).</summary>
    public static Tensor Transpose(Tensor x, int dimension0, int dimension1)
    {
        ArgumentNullException.ThrowIfNull(x);
        int d0 = x.NormalizeDimension(dimension0);
        int d1 = x.NormalizeDimension(dimension1);
        int[] permutation = Enumerable.Range(0, x.Rank).ToArray();
        (permutation[d0], permutation[d1]) = (permutation[d1], permutation[d0]);
        int[] shape = permutation.Select(p => x.Shape[p]).ToArray();
        Tensor y = Tensor.Empty(shape);
        Permute(x.Data, x.ShapeArray, permutation, y.Data, accumulate: false);
        if (Autograd.ShouldRecord(x))
        {
            // The inverse of a swap is the same swap.
            Autograd.Record("transpose", y, [x], gy => Permute(gy.Data, shape, permutation, x.GradData(), accumulate: true));
        }

        return y;
    }

    /// <summary>Joins tensors along <paramref name="dimension"/>; the other dimensions must agree.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int dimension = 0)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Count == 0)
        {
            throw new ArgumentException("Concat needs at least one tensor.", nameof(tensors));
        }

        Tensor first = tensors[0];
        int axis = first.NormalizeDimension(dimension);
        int[] shape = first.ShapeArray.ToArray();
        shape[axis] = 0;
        foreach (Tensor t in tensors)
        {
            if (t.Rank != first.Rank || Enumerable.Range(0, t.Rank).Any(d => d != axis && t.Shape[d] != first.Shape[d]))
            {
                throw new ArgumentException(
                    $"Concat along dimension {axis}: shapes {Tensor.ShapeText(first.Shape)} and {Tensor.ShapeText(t.Shape)} differ elsewhere.",
                    nameof(tensors));
            }

            shape[axis] += t.Shape[axis];
        }

        int outer = Product(shape, 0, axis);
        int inner = Product(shape, axis + 1, shape.Length);
        Tensor y = Tensor.Empty(shape);
        Span<float> yData = y.Data;
        int offset = 0;
        foreach (Tensor t in tensors)
        {
            int block = t.Shape[axis] * inner;
            ReadOnlySpan<float> src = t.Data;
            for (int o = 0; o < outer; o++)
            {
                src.Slice(o * block, block).CopyTo(yData.Slice(o * shape[axis] * inner + offset, block));
            }

            offset += block;
        }

        Tensor[] inputs = tensors.ToArray();
        if (Autograd.ShouldRecord(inputs))
        {
            Autograd.Record("cat", y, inputs, gy =>
            {
                ReadOnlySpan<float> g = gy.Data;
                int position = 0;
                foreach (Tensor t in inputs)
                {
                    int block = t.Shape[axis] * inner;
                    if (t.RequiresGrad)
                    {
                        Span<float> gt = t.GradData();
                        for (int o = 0; o < outer; o++)
                        {
                            Accumulate(gt.Slice(o * block, block), g.Slice(o * shape[axis] * inner + position, block));
                        }
                    }

                    position += block;
                }
            });
        }

        return y;
    }

    /// <summary>
    /// Rows of <paramref name="x"/> by index, in the order given (<c>torch.index_select(x, 0, rows)</c>): [N, ...] → [R, ...].
    /// A row may be taken more than once; its gradient is the sum over its copies.
    /// </summary>
    public static Tensor IndexSelect(Tensor x, IReadOnlyList<int> rows)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(rows);
        if (x.Rank < 1)
        {
            throw new ArgumentException("IndexSelect needs a tensor of rank 1 or more.", nameof(x));
        }

        int n = x.Shape[0];
        int inner = x.Length / Math.Max(n, 1);
        int[] shape = x.ShapeArray.ToArray();
        shape[0] = rows.Count;
        Tensor y = Tensor.Empty(shape);
        int[] taken = [.. rows];
        for (int r = 0; r < taken.Length; r++)
        {
            if ((uint)taken[r] >= (uint)n)
            {
                y.Dispose();
                throw new ArgumentOutOfRangeException(nameof(rows), taken[r], $"Row {taken[r]} of a tensor of {n} rows.");
            }

            x.Data.Slice(taken[r] * inner, inner).CopyTo(y.Data.Slice(r * inner, inner));
        }

        if (Autograd.ShouldRecord(x))
        {
            Autograd.Record("index_select", y, [x], gy =>
            {
                ReadOnlySpan<float> g = gy.Data;
                Span<float> gx = x.GradData();
                for (int r = 0; r < taken.Length; r++)
                {
                    Accumulate(gx.Slice(taken[r] * inner, inner), g.Slice(r * inner, inner));
                }
            });
        }

        return y;
    }

    private static int[] ResolveShape(Tensor x, int[] shape)
    {
        int[] resolved = (int[])shape.Clone();
        int inferred = Array.IndexOf(resolved, -1);
        if (inferred >= 0)
        {
            int known = 1;
            for (int i = 0; i < resolved.Length; i++)
            {
                known *= i == inferred ? 1 : resolved[i];
            }

            resolved[inferred] = known == 0 ? 0 : x.Length / known;
        }

        if (Tensor.ElementCount(resolved) != x.Length)
        {
            throw new ArgumentException($"Cannot reshape {Tensor.ShapeText(x.Shape)} ({x.Length} elements) to {Tensor.ShapeText(shape)}.", nameof(shape));
        }

        return resolved;
    }

    /// <summary>Writes (or adds) <paramref name="source"/> with its dimensions reordered by <paramref name="permutation"/>.</summary>
    private static void Permute(ReadOnlySpan<float> source, int[] sourceShape, int[] permutation, Span<float> destination, bool accumulate)
    {
        int rank = sourceShape.Length;
        int[] sourceStrides = new int[rank];
        for (int d = rank - 1, stride = 1; d >= 0; stride *= sourceShape[d], d--)
        {
            sourceStrides[d] = stride;
        }

        int[] outShape = permutation.Select(p => sourceShape[p]).ToArray();
        int[] strideOfOut = permutation.Select(p => sourceStrides[p]).ToArray();
        int[] index = new int[rank];
        int sourceOffset = 0;
        for (int i = 0; i < destination.Length && source.Length > 0; i++)
        {
            destination[i] = accumulate ? destination[i] + source[sourceOffset] : source[sourceOffset];
            for (int d = rank - 1; d >= 0; d--)
            {
                index[d]++;
                sourceOffset += strideOfOut[d];
                if (index[d] < outShape[d])
                {
                    break;
                }

                sourceOffset -= strideOfOut[d] * index[d];
                index[d] = 0;
            }
        }
    }

    private static int Product(IReadOnlyList<int> shape, int from, int to)
    {
        int product = 1;
        for (int i = from; i < to; i++)
        {
            product *= shape[i];
        }

        return product;
    }
}
