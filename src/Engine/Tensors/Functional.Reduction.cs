using System.Numerics.Tensors;

namespace SlidePlugin.Engine.Tensors;

/// <summary>Sums and means.</summary>
public static partial class Functional
{
    /// <summary>Σ of all elements: a tensor of shape [].</summary>
    public static Tensor Sum(Tensor x) => ScaledSum(x, 1f);

    /// <summary>Mean of all elements: a tensor of shape [].</summary>
    public static Tensor Mean(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        return ScaledSum(x, 1f / Math.Max(1, x.Length));
    }

    private static Tensor ScaledSum(Tensor x, float scale)
    {
        ArgumentNullException.ThrowIfNull(x);
        Tensor y = Tensor.Scalar(TensorPrimitives.Sum(x.Data) * scale);
        if (Autograd.ShouldRecord(x))
        {
            Autograd.Record("sum", y, [x], gy => TensorPrimitives.Add(x.GradData(), gy.Data[0] * scale, x.GradData()));
        }

        return y;
    }

    /// <summary>Σ along <paramref name="dimension"/>, which is removed unless <paramref name="keepDimension"/>.</summary>
    public static Tensor Sum(Tensor x, int dimension, bool keepDimension = false) => ScaledSum(x, dimension, keepDimension, mean: false);

    /// <summary>Mean along <paramref name="dimension"/>, which is removed unless <paramref name="keepDimension"/>.</summary>
    public static Tensor Mean(Tensor x, int dimension, bool keepDimension = false) => ScaledSum(x, dimension, keepDimension, mean: true);

    private static Tensor ScaledSum(Tensor x, int dimension, bool keepDimension, bool mean)
    {
        ArgumentNullException.ThrowIfNull(x);
        int axis = x.NormalizeDimension(dimension);
        (int outer, int size, int inner) = SplitAt(x, axis);
        int[] shape = keepDimension
            ? x.ShapeArray.Select((s, i) => i == axis ? 1 : s).ToArray()
            : x.ShapeArray.Where((_, i) => i != axis).ToArray();
        float scale = mean ? 1f / Math.Max(1, size) : 1f;
        Tensor y = Tensor.Zeros(shape);
        ReadOnlySpan<float> source = x.Data;
        Span<float> destination = y.Data;
        for (int o = 0; o < outer; o++)
        {
            Span<float> row = destination.Slice(o * inner, inner);
            for (int s = 0; s < size; s++)
            {
                Accumulate(row, source.Slice(((o * size) + s) * inner, inner));
            }
        }

        TensorPrimitives.Multiply(destination, scale, destination);

        if (Autograd.ShouldRecord(x))
        {
            Autograd.Record("sum_dim", y, [x], gy =>
            {
                Span<float> gx = x.GradData();
                ReadOnlySpan<float> g = gy.Data;
                for (int o = 0; o < outer; o++)
                {
                    for (int s = 0; s < size; s++)
                    {
                        Span<float> target = gx.Slice(((o * size) + s) * inner, inner);
                        TensorPrimitives.FusedMultiplyAdd(g.Slice(o * inner, inner), scale, target, target);
                    }
                }
            });
        }

        return y;
    }
}
