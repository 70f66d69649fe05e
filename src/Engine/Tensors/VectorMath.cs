using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SlidePlugin.Engine.Tensors;

/// <summary>
/// exp, tanh and sigmoid over spans: the same formulas, and so the same bits, as TensorPrimitives (its tanh is AMD's
/// vrs4_tanhf, −z / (z + 2) with z = e^(−2|x|) − 1; its sigmoid 1 / (1 + e^(−x))), compiled optimised from the first
/// call. Why: System.Numerics.Tensors is not ReadyToRun, and its tier-0 code for these runs about 1000x slower (26 ms
/// for tanh over 256x128 floats, against 30 µs); an analysis of a small slide calls each only a few times, so it never
/// left tier 0 and spent a third of its model time there.
/// </summary>
internal static class VectorMath
{
    /// <summary>destination[i] = e^x[i].</summary>
    public static void Exp(ReadOnlySpan<float> x, Span<float> destination) => Apply<ExpOperator>(x, destination);

    /// <summary>destination[i] = tanh(x[i]).</summary>
    public static void Tanh(ReadOnlySpan<float> x, Span<float> destination) => Apply<TanhOperator>(x, destination);

    /// <summary>destination[i] = 1 / (1 + e^−x[i]).</summary>
    public static void Sigmoid(ReadOnlySpan<float> x, Span<float> destination) => Apply<SigmoidOperator>(x, destination);

    private interface IOperator
    {
        static abstract float Invoke(float x);

        static abstract Vector128<float> Invoke(Vector128<float> x);

        static abstract Vector256<float> Invoke(Vector256<float> x);

        static abstract Vector512<float> Invoke(Vector512<float> x);
    }

    /// <summary>
    /// Whole vectors of the widest accelerated width, then one last vector that overlaps the previous one (element-wise,
    /// so recomputed elements get the same values); spans shorter than a 128-bit vector go scalar, as TensorPrimitives does.
    /// The last vector is computed before the loop: in place (x and destination the same span) the loop overwrites its inputs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Apply<TOperator>(ReadOnlySpan<float> x, Span<float> destination)
        where TOperator : struct, IOperator
    {
        if (destination.Length < x.Length)
        {
            throw new ArgumentException($"Destination holds {destination.Length} values, not the {x.Length} of the input.", nameof(destination));
        }

        ref float source = ref MemoryMarshal.GetReference(x);
        ref float target = ref MemoryMarshal.GetReference(destination);
        int length = x.Length;
        if (Vector512.IsHardwareAccelerated && length >= Vector512<float>.Count)
        {
            int last = length - Vector512<float>.Count;
            Vector512<float> tail = TOperator.Invoke(Vector512.LoadUnsafe(ref source, (nuint)last));
            for (int i = 0; i < last; i += Vector512<float>.Count)
            {
                TOperator.Invoke(Vector512.LoadUnsafe(ref source, (nuint)i)).StoreUnsafe(ref target, (nuint)i);
            }

            tail.StoreUnsafe(ref target, (nuint)last);
        }
        else if (Vector256.IsHardwareAccelerated && length >= Vector256<float>.Count)
        {
            int last = length - Vector256<float>.Count;
            Vector256<float> tail = TOperator.Invoke(Vector256.LoadUnsafe(ref source, (nuint)last));
            for (int i = 0; i < last; i += Vector256<float>.Count)
            {
                TOperator.Invoke(Vector256.LoadUnsafe(ref source, (nuint)i)).StoreUnsafe(ref target, (nuint)i);
            }

            tail.StoreUnsafe(ref target, (nuint)last);
        }
        else if (Vector128.IsHardwareAccelerated && length >= Vector128<float>.Count)
        {
            int last = length - Vector128<float>.Count;
            Vector128<float> tail = TOperator.Invoke(Vector128.LoadUnsafe(ref source, (nuint)last));
            for (int i = 0; i < last; i += Vector128<float>.Count)
            {
                TOperator.Invoke(Vector128.LoadUnsafe(ref source, (nuint)i)).StoreUnsafe(ref target, (nuint)i);
            }

            tail.StoreUnsafe(ref target, (nuint)last);
        }
        else
        {
            for (int i = 0; i < length; i++)
            {
                Unsafe.Add(ref target, i) = TOperator.Invoke(Unsafe.Add(ref source, i));
            }
        }
    }

    private readonly struct ExpOperator : IOperator
    {
        public static float Invoke(float x) => MathF.Exp(x);

        public static Vector128<float> Invoke(Vector128<float> x) => Vector128.Exp(x);

        public static Vector256<float> Invoke(Vector256<float> x) => Vector256.Exp(x);

        public static Vector512<float> Invoke(Vector512<float> x) => Vector512.Exp(x);
    }

    private readonly struct TanhOperator : IOperator
    {
        private const uint SignBit = 0x8000_0000u;

        public static float Invoke(float x) => MathF.Tanh(x);

        public static Vector128<float> Invoke(Vector128<float> x)
        {
            Vector128<float> z = Vector128.Exp(Vector128.Create(-2f) * Vector128.Abs(x)) - Vector128<float>.One;
            return ((x.AsUInt32() & Vector128.Create(SignBit)) ^ (-z / (z + Vector128.Create(2f))).AsUInt32()).AsSingle();
        }

        public static Vector256<float> Invoke(Vector256<float> x)
        {
            Vector256<float> z = Vector256.Exp(Vector256.Create(-2f) * Vector256.Abs(x)) - Vector256<float>.One;
            return ((x.AsUInt32() & Vector256.Create(SignBit)) ^ (-z / (z + Vector256.Create(2f))).AsUInt32()).AsSingle();
        }

        public static Vector512<float> Invoke(Vector512<float> x)
        {
            Vector512<float> z = Vector512.Exp(Vector512.Create(-2f) * Vector512.Abs(x)) - Vector512<float>.One;
            return ((x.AsUInt32() & Vector512.Create(SignBit)) ^ (-z / (z + Vector512.Create(2f))).AsUInt32()).AsSingle();
        }
    }

    private readonly struct SigmoidOperator : IOperator
    {
        public static float Invoke(float x) => 1f / (1f + MathF.Exp(-x));

        public static Vector128<float> Invoke(Vector128<float> x) => Vector128<float>.One / (Vector128<float>.One + Vector128.Exp(-x));

        public static Vector256<float> Invoke(Vector256<float> x) => Vector256<float>.One / (Vector256<float>.One + Vector256.Exp(-x));

        public static Vector512<float> Invoke(Vector512<float> x) => Vector512<float>.One / (Vector512<float>.One + Vector512.Exp(-x));
    }
}
