using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Datasets;

/// <summary>Parameters of MNIST-bags (defaults: Ilse et al.'s experiment, target digit 9, mean length 10, variance 2).</summary>
public sealed record MnistBagsOptions
{
    /// <summary>A bag is positive when it holds this digit.</summary>
    public int TargetDigit { get; init; } = 9;

    /// <summary>Mean bag length.</summary>
    public double MeanBagLength { get; init; } = 10;

    /// <summary>Spread of the bag length (the official loader passes it as the normal's standard deviation).</summary>
    public double VarBagLength { get; init; } = 2;

    /// <summary>Bags built from the training images.</summary>
    public int TrainBags { get; init; } = 200;

    /// <summary>Bags built from the test images.</summary>
    public int TestBags { get; init; } = 1000;

    /// <summary>Seed of the bag composition (independent of the training seed, as in the paper's loader).</summary>
    public ulong Seed { get; init; } = 1;
}

/// <summary>
/// MNIST-bags as Ilse et al.'s loader builds them: each bag draws its length from N(mean, var) (rounded toward zero,
/// at least 1) and that many digits uniformly with replacement from the split's images; the bag is positive when it
/// holds the target digit. Training bags come from the 60,000 training images (split <c>train</c>), test bags from the
/// 10,000 test images (split <c>test</c>). The official loader uses NumPy's generator; this one uses the engine's, so the
/// same seed gives different (equally distributed) bags — <see cref="Indices"/> lets a reference run use the very same.
/// </summary>
public sealed class MnistBags : BagDataset
{
    private readonly MnistIdx _train;
    private readonly MnistIdx _test;
    private readonly List<BagItem> _items = [];
    private readonly List<int[]> _indices = [];

    /// <summary>Builds the bags from the idx files in <paramref name="folder"/>.</summary>
    public MnistBags(string folder, MnistBagsOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        Options = options ?? new MnistBagsOptions();
        if (Options.TargetDigit is < 0 or > 9 || Options.MeanBagLength < 1 || Options.TrainBags < 0 || Options.TestBags < 0)
        {
            throw new ArgumentException("MNIST-bags needs a target digit 0-9, a mean length of at least 1 and non-negative bag counts.", nameof(options));
        }

        _train = MnistIdx.Load(folder, train: true);
        _test = MnistIdx.Load(folder, train: false);
        var random = new TensorRandom(Options.Seed);
        Add(_train, "train", Options.TrainBags, random);
        Add(_test, "test", Options.TestBags, random);
    }

    /// <summary>The parameters the bags were built with.</summary>
    public MnistBagsOptions Options { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<BagItem> Items => _items;

    /// <inheritdoc/>
    public override IReadOnlyList<string> Classes => [$"no {Options.TargetDigit}", $"has {Options.TargetDigit}"];

    /// <inheritdoc/>
    public override int Channels => 1;

    /// <inheritdoc/>
    public override int PatchSize => 28;

    /// <inheritdoc/>
    public override PatchNormalization Normalization => PatchNormalization.Mnist;

    /// <inheritdoc/>
    public override string Description =>
        $"MNIST-bags (target {Options.TargetDigit}, length N({Options.MeanBagLength}, {Options.VarBagLength}), {Options.TrainBags} train / {Options.TestBags} test bags, seed {Options.Seed})";

    /// <summary>The digits of bag <paramref name="index"/>: indices into its split's idx file.</summary>
    public IReadOnlyList<int> Indices(int index) => _indices[index];

    /// <summary>The digit labels of bag <paramref name="index"/>, in instance order.</summary>
    public IReadOnlyList<int> InstanceLabels(int index)
    {
        MnistIdx source = SourceOf(index);
        return [.. _indices[index].Select(i => (int)source.Labels[i])];
    }

    /// <inheritdoc/>
    protected override PatchBag ReadPatches(int index)
    {
        MnistIdx source = SourceOf(index);
        int[] digits = _indices[index];
        int size = source.Rows * source.Columns;
        byte[] pixels = new byte[digits.Length * size];
        for (int i = 0; i < digits.Length; i++)
        {
            source.Images.AsSpan(digits[i] * size, size).CopyTo(pixels.AsSpan(i * size));
        }

        return new PatchBag(pixels, digits.Length, 28, 1);
    }

    /// <summary>The idx file bag <paramref name="index"/> draws its digits from: the training or the test images.</summary>
    private MnistIdx SourceOf(int index) => _items[index].Split == "train" ? _train : _test;

    private void Add(MnistIdx source, string split, int bags, TensorRandom random)
    {
        for (int b = 0; b < bags; b++)
        {
            // int(np.random.normal(mean, var)), at least 1: the official loader's bag length.
            int length = Math.Max(1, (int)(Options.MeanBagLength + (Options.VarBagLength * random.NextGaussian())));
            int[] digits = new int[length];
            bool positive = false;
            for (int i = 0; i < length; i++)
            {
                digits[i] = random.NextInt(source.Count);
                positive |= source.Labels[digits[i]] == Options.TargetDigit;
            }

            _items.Add(new BagItem($"{split}-{b:D5}", positive ? 1 : 0, split));
            _indices.Add(digits);
        }
    }
}
