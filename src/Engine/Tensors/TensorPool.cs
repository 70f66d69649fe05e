using System.Collections.Concurrent;

namespace SlidePlugin.Engine.Tensors;

/// <summary>
/// Tensor storage reused by exact length. A model's layers ask for the same sizes on every bag, so exact-length
/// reuse makes inference allocation-free after the first call, without the up-to-2x rounding of
/// <see cref="System.Buffers.ArrayPool{T}"/>'s power-of-two buckets (which doubled peak memory on large bags).
/// At most <see cref="MaxRetainedBytes"/> are kept; beyond that, returned arrays are left to the GC.
/// </summary>
internal static class TensorPool
{
    /// <summary>Bytes of idle storage kept for reuse.</summary>
    public const long MaxRetainedBytes = 256L << 20;

    private static readonly ConcurrentDictionary<int, ConcurrentStack<float[]>> s_free = new();
    private static long s_retainedBytes;

    /// <summary>An array of exactly <paramref name="length"/> floats with unspecified contents.</summary>
    public static float[] Rent(int length)
    {
        if (s_free.TryGetValue(length, out ConcurrentStack<float[]>? stack) && stack.TryPop(out float[]? array))
        {
            Interlocked.Add(ref s_retainedBytes, -(long)length * sizeof(float));
            return array;
        }

        return GC.AllocateUninitializedArray<float>(length);
    }

    /// <summary>Offers <paramref name="array"/> for reuse.</summary>
    public static void Return(float[] array)
    {
        long bytes = (long)array.Length * sizeof(float);
        if (Interlocked.Add(ref s_retainedBytes, bytes) > MaxRetainedBytes)
        {
            Interlocked.Add(ref s_retainedBytes, -bytes);
            return;
        }

        s_free.GetOrAdd(array.Length, _ => new ConcurrentStack<float[]>()).Push(array);
    }
}
