namespace SlidePlugin.Engine.Tensors;

/// <summary>Matrix products: linear layers and matmul, through OpenBLAS (<see cref="Gemm"/>).</summary>
public static partial class Functional
{
    /// <summary>
    /// y = x·Wᵀ + b, as <c>torch.nn.functional.linear</c>.
    /// x: [N, in]; weight: [out, in]; bias: [out] or null; y: [N, out].
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        if (x.Rank != 2 || weight.Rank != 2 || x.Shape[1] != weight.Shape[1])
        {
            throw new ArgumentException(
                $"linear: input {Tensor.ShapeText(x.Shape)} does not match weight {Tensor.ShapeText(weight.Shape)} (expects [N, {(weight.Rank == 2 ? weight.Shape[1] : '?')}]).");
        }

        int n = x.Shape[0], inFeatures = x.Shape[1], outFeatures = weight.Shape[0];
        if (bias is not null && (bias.Rank != 1 || bias.Shape[0] != outFeatures))
        {
            throw new ArgumentException($"linear: bias {Tensor.ShapeText(bias.Shape)} should be [{outFeatures}].");
        }

        Tensor y = Tensor.Empty(n, outFeatures);
        Span<float> yData = y.Data;
        if (bias is null)
        {
            yData.Clear();
        }
        else
        {
            for (int row = 0; row < n; row++)
            {
                bias.Data.CopyTo(yData.Slice(row * outFeatures, outFeatures));
            }
        }

        Gemm.Multiply(false, true, n, outFeatures, inFeatures, x.Data, weight.Data, yData, beta: 1f);   // [N, in]·[in, out]
        if (Autograd.ShouldRecord(x, weight, bias))
        {
            Autograd.Record("linear", y, bias is null ? [x, weight] : [x, weight, bias], gy =>
            {
                if (x.RequiresGrad)
                {
                    Gemm.Multiply(false, false, n, inFeatures, outFeatures, gy.Data, weight.Data, x.GradData(), beta: 1f);   // [N, out]·[out, in]
                }

                if (weight.RequiresGrad)
                {
                    Gemm.Multiply(true, false, outFeatures, inFeatures, n, gy.Data, x.Data, weight.GradData(), beta: 1f);   // [out, N]·[N, in]
                }

                if (bias is { RequiresGrad: true })
                {
                    SumRows(gy.Data, n, outFeatures, bias.GradData());
                }
            });
        }

        return y;
    }

    /// <summary>a·b for matrices: a [M, K], b [K, N] → [M, N].</summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Rank != 2 || b.Rank != 2 || a.Shape[1] != b.Shape[0])
        {
            throw new ArgumentException($"matmul: shapes {Tensor.ShapeText(a.Shape)} and {Tensor.ShapeText(b.Shape)} cannot be multiplied.");
        }

        int m = a.Shape[0], k = a.Shape[1], n = b.Shape[1];
        Tensor y = Tensor.Empty(m, n);
        Gemm.Multiply(false, false, m, n, k, a.Data, b.Data, y.Data);
        if (Autograd.ShouldRecord(a, b))
        {
            Autograd.Record("matmul", y, [a, b], gy =>
            {
                if (a.RequiresGrad)
                {
                    Gemm.Multiply(false, true, m, k, n, gy.Data, b.Data, a.GradData(), beta: 1f);   // [M, N]·[N, K]
                }

                if (b.RequiresGrad)
                {
                    Gemm.Multiply(true, false, k, n, m, a.Data, gy.Data, b.GradData(), beta: 1f);   // [K, M]·[M, N]
                }
            });
        }

        return y;
    }

    /// <summary>Adds the column sums of a [rows, columns] matrix to <paramref name="destination"/> ([columns]).</summary>
    private static void SumRows(ReadOnlySpan<float> matrix, int rows, int columns, Span<float> destination)
    {
        for (int row = 0; row < rows; row++)
        {
            Accumulate(destination, matrix.Slice(row * columns, columns));
        }
    }
}
