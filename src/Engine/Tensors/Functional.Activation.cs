using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SlidePlugin.Engine.Tensors;

/// <summary>Activations and softmax.</summary>
public static partial class Functional
{
    /// <summary>max(x, 0).</summary>
    public static Tensor Relu(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        Tensor y = Tensor.Empty(x.ShapeArray);
        TensorPrimitives.Max(x.Data, 0f, y.Data);
        if (Autograd.ShouldRecord(x))
        {
            Autograd.Record("relu", y, [x], gy => ReluBackward(x.GradData(), gy.Data, y.Data));
        }

        return y;
    }

    /// <summary>tanh(x).</summary>
    public static Tensor Tanh(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        Tensor y = Tensor.Empty(x.ShapeArray);
        VectorMath.Tanh(x.Data, y.Data);
        if (Autograd.ShouldRecord(x))
        {
            Autograd.Record("tanh", y, [x], gy => BackwardFromOutput<TanhDerivative>(x.GradData(), gy.Data, y.Data));
        }

        return y;
    }

    /// <summary>1 / (1 + e^−x).</summary>
    public static Tensor Sigmoid(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        Tensor y = Tensor.Empty(x.ShapeArray);
        VectorMath.Sigmoid(x.Data, y.Data);
        if (Autograd.ShouldRecord(x))
        {
            Autograd.Record("sigmoid", y, [x], gy => BackwardFromOutput<SigmoidDerivative>(x.GradData(), gy.Data, y.Data));
        }

        return y;
    }

    /// <summary>Softmax along <paramref name="dimension"/>, computed as exp(x − max) / Σ so large scores do not overflow.</summary>
    public static Tensor Softmax(Tensor x, int dimension)
    {
        ArgumentNullException.ThrowIfNull(x);
        (int outer, int size, int inner) = SplitAt(x, dimension);
        Tensor y = Tensor.Empty(x.ShapeArray);
        ForEachLine(x.Data, y.Data, outer, size, inner, static (line, result) =>
        {
            float max = TensorPrimitives.Max(line);
            TensorPrimitives.Subtract(line, max, result);
            VectorMath.Exp(result, result);
            TensorPrimitives.Divide(result, TensorPrimitives.Sum(result), result);
        });
        if (Autograd.ShouldRecord(x))
        {
            Autograd.Record("softmax", y, [x], gy =>
            {
                // dx = y · (dy − Σ dy·y) along the dimension.
                using Tensor gx = Tensor.Empty(x.ShapeArray);
                using Tensor product = Tensor.Empty(x.ShapeArray);
                TensorPrimitives.Multiply(gy.Data, y.Data, product.Data);                      // dy·y
                ForEachLine(product.Data, gx.Data, outer, size, inner, static (line, result) =>
                    result.Fill(TensorPrimitives.Sum(line)));                                   // Σ dy·y, spread over the line
                TensorPrimitives.Multiply(gx.Data, y.Data, gx.Data);                          // y·Σ
                TensorPrimitives.Subtract(product.Data, gx.Data, gx.Data);                     // dy·y − y·Σ
                Accumulate(x.GradData(), gx.Data);
            });
        }

        return y;
    }

    /// <summary>log(softmax(x)) along <paramref name="dimension"/>, computed stably as x − max − log Σ exp(x − max).</summary>
    public static Tensor LogSoftmax(Tensor x, int dimension)
    {
        ArgumentNullException.ThrowIfNull(x);
        (int outer, int size, int inner) = SplitAt(x, dimension);
        Tensor y = Tensor.Empty(x.ShapeArray);
        float[] scratch = new float[size];
        ForEachLine(x.Data, y.Data, outer, size, inner, (line, result) =>
        {
            float max = TensorPrimitives.Max(line);
            TensorPrimitives.Subtract(line, max, scratch);
            VectorMath.Exp(scratch, scratch);
            float logSum = MathF.Log(TensorPrimitives.Sum(scratch));
            TensorPrimitives.Subtract(line, max + logSum, result);
        });
        if (Autograd.ShouldRecord(x))
        {
            Autograd.Record("log_softmax", y, [x], gy =>
            {
                // dx = dy − softmax · Σ dy along the dimension.
                using Tensor sums = Tensor.Empty(x.ShapeArray);
                ForEachLine(gy.Data, sums.Data, outer, size, inner, static (line, result) => result.Fill(TensorPrimitives.Sum(line)));
                Span<float> gx = x.GradData();
                ReadOnlySpan<float> g = gy.Data;
                ReadOnlySpan<float> yData = y.Data;
                ReadOnlySpan<float> s = sums.Data;
                for (int i = 0; i < gx.Length; i++)
                {
                    gx[i] += g[i] - (MathF.Exp(yData[i]) * s[i]);
                }
            });
        }

        return y;
    }

    /// <summary>gx += g where y > 0, as PyTorch (which passes the gradient where the result is positive).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per step over whole activations: optimise at once
    private static void ReluBackward(Span<float> gx, ReadOnlySpan<float> g, ReadOnlySpan<float> y)
    {
        int i = 0;
        for (; i + Vector256<float>.Count <= gx.Length; i += Vector256<float>.Count)
        {
            Vector256<float> positive = Vector256.GreaterThan(Vector256.Create(y.Slice(i, Vector256<float>.Count)), Vector256<float>.Zero);
            Vector256<float> sum = Vector256.Create(gx.Slice(i, Vector256<float>.Count)) + (Vector256.Create(g.Slice(i, Vector256<float>.Count)) & positive);
            sum.CopyTo(gx.Slice(i, Vector256<float>.Count));
        }

        for (; i < gx.Length; i++)
        {
            if (y[i] > 0f)
            {
                gx[i] += g[i];
            }
        }
    }

    /// <summary>An activation whose derivative is a function of its output y.</summary>
    private interface IDerivativeFromOutput
    {
        static abstract float Of(float y);
    }

    /// <summary>tanh′ = 1 − y².</summary>
    private readonly struct TanhDerivative : IDerivativeFromOutput
    {
        public static float Of(float y) => 1f - (y * y);
    }

    /// <summary>sigmoid′ = y·(1 − y).</summary>
    private readonly struct SigmoidDerivative : IDerivativeFromOutput
    {
        public static float Of(float y) => y * (1f - y);
    }

    /// <summary>gx += g · f′ where f′ is computed from the output y.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per step over whole activations: optimise at once
    private static void BackwardFromOutput<TDerivative>(Span<float> gx, ReadOnlySpan<float> g, ReadOnlySpan<float> y)
        where TDerivative : struct, IDerivativeFromOutput
    {
        for (int i = 0; i < gx.Length; i++)
        {
            gx[i] += g[i] * TDerivative.Of(y[i]);
        }
    }

    private delegate void LineAction(ReadOnlySpan<float> line, Span<float> result);

    /// <summary>Splits a shape at one dimension into (elements before, the dimension, elements after).</summary>
    private static (int Outer, int Size, int Inner) SplitAt(Tensor x, int dimension)
    {
        int axis = x.NormalizeDimension(dimension);
        return (Product(x.Shape, 0, axis), x.Shape[axis], Product(x.Shape, axis + 1, x.Rank));
    }

    /// <summary>Runs <paramref name="action"/> on every line along the split dimension, gathering strided lines when inner > 1.</summary>
    private static void ForEachLine(ReadOnlySpan<float> source, Span<float> destination, int outer, int size, int inner, LineAction action)
    {
        if (inner == 1)
        {
            for (int o = 0; o < outer; o++)
            {
                action(source.Slice(o * size, size), destination.Slice(o * size, size));
            }

            return;
        }

        float[] line = new float[size];
        float[] result = new float[size];
        for (int o = 0; o < outer; o++)
        {
            for (int i = 0; i < inner; i++)
            {
                int start = (o * size * inner) + i;
                for (int s = 0; s < size; s++)
                {
                    line[s] = source[start + (s * inner)];
                }

                action(line, result);
                for (int s = 0; s < size; s++)
                {
                    destination[start + (s * inner)] = result[s];
                }
            }
        }
    }
}
