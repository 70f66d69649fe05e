using System.Numerics.Tensors;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Tests.Tensors;

/// <summary>The engine's exp, tanh and sigmoid give TensorPrimitives' bits at every length (whole vectors, overlapping tail, scalar).</summary>
public class VectorMathTests
{
    private static readonly float[] Specials = [0f, -0f, 1e-7f, -1e-7f, 1e-3f, 0.5f, -0.5f, 8.66f, -8.67f, 20f, -20f, 88.7f, -103f, 89f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, float.Epsilon];

    public static TheoryData<int> Lengths => [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000, 32768];

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Exp_AnyLength_SameBitsAsTensorPrimitives(int length) =>
        AssertSameBits(length, VectorMath.Exp, TensorPrimitives.Exp);

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Tanh_AnyLength_SameBitsAsTensorPrimitives(int length) =>
        AssertSameBits(length, VectorMath.Tanh, TensorPrimitives.Tanh);

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Sigmoid_AnyLength_SameBitsAsTensorPrimitives(int length) =>
        AssertSameBits(length, VectorMath.Sigmoid, TensorPrimitives.Sigmoid);

    [Theory]
    [MemberData(nameof(Lengths))]
    public void Exp_InPlace_SameBitsAsIntoAnotherSpan(int length)
    {
        float[] x = [.. Enumerable.Range(0, length).Select(i => (i % 17) / 4f - 2f)];
        var expected = new float[length];
        VectorMath.Exp(x, expected);

        VectorMath.Exp(x, x);

        Assert.Equal(expected, x);
    }

    [Fact]
    public void Tanh_ShortDestination_Refused()
    {
        var error = Assert.Throws<ArgumentException>(() => VectorMath.Tanh(new float[8], new float[7]));

        Assert.Contains("7", error.Message, StringComparison.Ordinal);
    }

    private delegate void SpanFunction(ReadOnlySpan<float> x, Span<float> destination);

    private static void AssertSameBits(int length, SpanFunction ours, SpanFunction reference)
    {
        var random = new Random(length);
        float[] x = Enumerable.Range(0, length)
            .Select(i => i < Specials.Length && length > Specials.Length ? Specials[i] : (float)((random.NextDouble() * 40) - 20))
            .ToArray();
        var expected = new float[length];
        var actual = new float[length];

        reference(x, expected);
        ours(x, actual);

        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), actual.Select(BitConverter.SingleToInt32Bits));
    }
}
