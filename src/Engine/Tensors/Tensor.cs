using System.Globalization;

namespace SlidePlugin.Engine.Tensors;

/// <summary>
/// A dense, contiguous, row-major float32 tensor with reverse-mode autograd (<see cref="Backward"/>).
/// Storage is rented from <see cref="TensorPool"/>; views made by <see cref="Reshape"/> share it, and it goes back to the pool
/// when the last tensor using it is disposed. A tensor that is never disposed is simply collected.
/// </summary>
public sealed class Tensor : IDisposable
{
    private Storage? _storage;
    private readonly int[] _shape;

    private Tensor(Storage storage, int[] shape, int length)
    {
        _storage = storage;
        _shape = shape;
        Length = length;
    }

    /// <summary>The size of each dimension.</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>The elements, row-major.</summary>
    public Span<float> Data => Buffer.AsSpan(0, Length);

    /// <summary>The storage array (elements 0..Length), for parallel loops, which cannot capture spans.</summary>
    internal float[] Buffer => (_storage ?? throw new ObjectDisposedException(nameof(Tensor), "The tensor was disposed.")).Array;

    /// <summary>
    /// True when gradients flow to this tensor. Set it on leaves (parameters, inputs); results of operations inherit it
    /// from their inputs while gradients are recorded (see <see cref="GradMode"/>).
    /// </summary>
    public bool RequiresGrad { get; set; }

    /// <summary>The accumulated gradient after <see cref="Backward"/>, on leaves that require it; same shape as this.</summary>
    public Tensor? Grad { get; internal set; }

    /// <summary>
    /// Keeps this result readable after <see cref="Backward"/>. Backward returns the storage of every intermediate
    /// result of the graph to the pool (as PyTorch frees its saved tensors), except the tensor it is called on and
    /// those marked here: outputs a caller still reads, such as a model's attention.
    /// </summary>
    public Tensor RetainAfterBackward()
    {
        KeepAfterBackward = true;
        return this;
    }

    internal bool KeepAfterBackward { get; private set; }

    /// <summary>How this tensor was computed, while the graph is alive; null on leaves.</summary>
    internal GradNode? Node { get; set; }

    /// <summary>True for tensors not computed by a recorded operation (parameters, inputs).</summary>
    public bool IsLeaf => Node is null;

    /// <summary>Size of dimension <paramref name="dimension"/>; negative counts from the end.</summary>
    public int Size(int dimension) => _shape[NormalizeDimension(dimension)];

    /// <summary>A tensor of the given shape with unspecified contents (pooled storage).</summary>
    public static Tensor Empty(params int[] shape)
    {
        int length = ElementCount(shape);
        return new Tensor(new Storage(TensorPool.Rent(length)), (int[])shape.Clone(), length);
    }

    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(params int[] shape)
    {
        Tensor tensor = Empty(shape);
        tensor.Data.Clear();
        return tensor;
    }

    /// <summary>A tensor filled with <paramref name="value"/>.</summary>
    public static Tensor Full(float value, params int[] shape)
    {
        Tensor tensor = Empty(shape);
        tensor.Data.Fill(value);
        return tensor;
    }

    /// <summary>A copy of <paramref name="data"/> with the given shape.</summary>
    public static Tensor FromData(ReadOnlySpan<float> data, params int[] shape)
    {
        int length = ElementCount(shape);
        if (data.Length != length)
        {
            throw new ArgumentException(
                $"{data.Length} values do not fill shape [{string.Join(", ", shape)}] ({length} elements).", nameof(data));
        }

        Tensor tensor = Empty(shape);
        data.CopyTo(tensor.Data);
        return tensor;
    }

    /// <summary>A one-element tensor of shape [].</summary>
    public static Tensor Scalar(float value) => FromData([value]);

    /// <summary>The value of a one-element tensor.</summary>
    public float Item() => Length == 1
        ? Data[0]
        : throw new InvalidOperationException($"Item() needs a one-element tensor; this one has shape {ShapeText(_shape)}.");

    /// <summary>The elements as a new array.</summary>
    public float[] ToArray() => Data.ToArray();

    /// <summary>A copy that is not part of any graph.</summary>
    public Tensor Detach() => FromData(Data, _shape);

    /// <summary>The same storage seen with another shape (one dimension may be -1); recorded for autograd.</summary>
    public Tensor Reshape(params int[] shape) => Functional.Reshape(this, shape);

    /// <summary>
    /// Computes the gradient of this tensor with respect to every leaf that requires it, accumulating into their
    /// <see cref="Grad"/>. Without <paramref name="gradient"/> this must be a one-element tensor (a loss). The graph is
    /// released afterwards, as PyTorch does without <c>retain_graph</c>.
    /// </summary>
    public void Backward(Tensor? gradient = null) => Autograd.Backward(this, gradient);

    /// <summary>Drops the accumulated gradient.</summary>
    public void ZeroGrad()
    {
        Grad?.Dispose();
        Grad = null;
    }

    /// <summary>The gradient storage, created as zeros on first use, for operations to accumulate into.</summary>
    internal Span<float> GradData() => GradTensor().Data;

    /// <summary>The gradient tensor, created as zeros on first use.</summary>
    internal Tensor GradTensor() => Grad ??= Zeros(_shape);

    /// <summary>A tensor sharing this one's storage with another shape of the same length.</summary>
    internal Tensor View(int[] shape)
    {
        Storage storage = _storage ?? throw new ObjectDisposedException(nameof(Tensor), "The tensor was disposed.");
        storage.Retain();
        return new Tensor(storage, shape, Length);
    }

    internal int[] ShapeArray => _shape;

    internal int NormalizeDimension(int dimension)
    {
        int normalized = dimension < 0 ? dimension + Rank : dimension;
        if (normalized < 0 || normalized >= Rank)
        {
            throw new ArgumentOutOfRangeException(nameof(dimension), dimension, $"Dimension out of range for shape {ShapeText(_shape)}.");
        }

        return normalized;
    }

    /// <summary>Releases the storage (to the pool, once no view uses it). Using this tensor afterwards is an error.</summary>
    public void Dispose()
    {
        Interlocked.Exchange(ref _storage, null)?.Release();
        Node = null;
    }

    /// <inheritdoc/>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"Tensor{ShapeText(_shape)}{(RequiresGrad ? " requires_grad" : "")}");

    internal static string ShapeText(IReadOnlyList<int> shape) => "[" + string.Join(", ", shape) + "]";

    internal static int ElementCount(IReadOnlyList<int> shape)
    {
        long count = 1;
        foreach (int size in shape)
        {
            if (size < 0)
            {
                throw new ArgumentException($"Negative dimension in shape {ShapeText(shape)}.", nameof(shape));
            }

            count *= size;
            if (count > Array.MaxLength)
            {
                throw new ArgumentException($"Shape {ShapeText(shape)} has more elements than one array can hold.", nameof(shape));
            }
        }

        return (int)count;
    }

    /// <summary>A pooled array shared by a tensor and its views, returned when the last of them is disposed.</summary>
    private sealed class Storage(float[] array)
    {
        private int _references = 1;

        public float[] Array { get; } = array;

        public void Retain() => Interlocked.Increment(ref _references);

        public void Release()
        {
            if (Interlocked.Decrement(ref _references) == 0)
            {
                TensorPool.Return(Array);
            }
        }
    }
}
