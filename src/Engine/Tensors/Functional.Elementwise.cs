using System.Numerics.Tensors;

namespace SlidePlugin.Engine.Tensors;

/// <summary>Element-wise arithmetic on tensors of the same shape, through <see cref="TensorPrimitives"/>.</summary>
public static partial class Functional
{
    /// <summary>a + b, same shape.</summary>
    public static Tensor Add(Tensor a, Tensor b)
    {
        Tensor y = SameShapeResult(a, b, "add");
        TensorPrimitives.Add(a.Data, b.Data, y.Data);
        if (Autograd.ShouldRecord(a, b))
        {
            Autograd.Record("add", y, [a, b], gy =>
            {
                AccumulateIfRequired(a, gy.Data);
                AccumulateIfRequired(b, gy.Data);
            });
        }

        return y;
    }

    /// <summary>a − b, same shape.</summary>
    public static Tensor Subtract(Tensor a, Tensor b)
    {
        Tensor y = SameShapeResult(a, b, "subtract");
        TensorPrimitives.Subtract(a.Data, b.Data, y.Data);
        if (Autograd.ShouldRecord(a, b))
        {
            Autograd.Record("sub", y, [a, b], gy =>
            {
                AccumulateIfRequired(a, gy.Data);
                if (b.RequiresGrad)
                {
                    TensorPrimitives.Subtract(b.GradData(), gy.Data, b.GradData());
                }
            });
        }

        return y;
    }

    /// <summary>a · b element-wise, same shape.</summary>
    public static Tensor Multiply(Tensor a, Tensor b)
    {
        Tensor y = SameShapeResult(a, b, "multiply");
        TensorPrimitives.Multiply(a.Data, b.Data, y.Data);
        if (Autograd.ShouldRecord(a, b))
        {
            Autograd.Record("mul", y, [a, b], gy =>
            {
                if (a.RequiresGrad)
                {
                    TensorPrimitives.FusedMultiplyAdd(gy.Data, b.Data, a.GradData(), a.GradData());
                }

                if (b.RequiresGrad)
                {
                    TensorPrimitives.FusedMultiplyAdd(gy.Data, a.Data, b.GradData(), b.GradData());
                }
            });
        }

        return y;
    }

    /// <summary>x · <paramref name="scale"/>.</summary>
    public static Tensor Scale(Tensor x, float scale)
    {
        ArgumentNullException.ThrowIfNull(x);
        Tensor y = Tensor.Empty(x.ShapeArray);
        TensorPrimitives.Multiply(x.Data, scale, y.Data);
        if (Autograd.ShouldRecord(x))
        {
            Autograd.Record("scale", y, [x], gy => TensorPrimitives.FusedMultiplyAdd(gy.Data, scale, x.GradData(), x.GradData()));
        }

        return y;
    }

    private static Tensor SameShapeResult(Tensor a, Tensor b, string operation)
    {
        RequireSameShape(a, b, operation);
        return Tensor.Empty(a.ShapeArray);
    }

    private static void RequireSameShape(Tensor a, Tensor b, string operation)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (!a.Shape.SequenceEqual(b.Shape))
        {
            throw new ArgumentException($"{operation}: shapes {Tensor.ShapeText(a.Shape)} and {Tensor.ShapeText(b.Shape)} differ.");
        }
    }

    private static void AccumulateIfRequired(Tensor x, ReadOnlySpan<float> gradient)
    {
        if (x.RequiresGrad)
        {
            Accumulate(x.GradData(), gradient);
        }
    }

    private static void Accumulate(Span<float> destination, ReadOnlySpan<float> gradient) =>
        TensorPrimitives.Add(destination, gradient, destination);
}
