using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Modules;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Tests.Tensors;

public sealed class TensorTests
{
    [Theory]
    [InlineData(36)]   // 18 outputs a row: two vectors of 8, a scalar tail of 2
    [InlineData(8)]    // 4: one half-width vector (the second LeNet stage's 8x8 maps)
    [InlineData(24)]   // 12: a vector of 8, a half-width vector of 4
    [InlineData(14)]   // 7: a half-width vector, a scalar tail of 3
    public void MaxPool2d_TiesAndNaNAcrossVectorAndTail_GradientGoesToTheFirstMaximum(int columns)
    {
        // 3 values only, so most windows hold ties.
        int outColumns = columns / 2, plane = 6 * columns;
        var random = new Random(3);
        float[] values = [.. Enumerable.Range(0, 2 * plane).Select(_ => (float)random.Next(3))];
        values[plane + (2 * columns) + Math.Min(9, columns - 1)] = float.NaN;   // plane 1, row 2: NaN wins its window and takes the gradient
        using Tensor x = Tensor.FromData(values, 1, 2, 6, columns);
        x.RequiresGrad = true;

        Tensor y = Functional.MaxPool2d(x, 2);
        float[] pooled = y.ToArray();
        Functional.Sum(y).Backward();   // frees the graph's intermediates, y among them

        var expected = new float[values.Length];
        for (int p = 0; p < 2; p++)
        {
            for (int i = 0; i < 3; i++)
            {
                for (int j = 0; j < outColumns; j++)
                {
                    int[] window = [.. new[] { 0, 1, columns, columns + 1 }.Select(o => (p * plane) + (2 * i * columns) + (2 * j) + o)];
                    int first = window.FirstOrDefault(k => float.IsNaN(values[k]), -1);
                    if (first < 0)
                    {
                        float best = window.Max(k => values[k]);
                        first = window.First(k => values[k] == best);
                    }

                    expected[first] += 1;
                    Assert.Equal(values[first], pooled[(p * 3 * outColumns) + (i * outColumns) + j]);
                }
            }
        }

        Assert.Equal(expected, x.Grad!.ToArray());
    }

    [Fact]
    public void Backward_SharedInput_AccumulatesBothPaths()
    {
        // y = x·x + x → dy/dx = 2x + 1.
        Tensor x = Tensor.FromData([1f, -2f, 3f], 3);
        x.RequiresGrad = true;
        Tensor y = Functional.Sum(Functional.Add(Functional.Multiply(x, x), x));
        y.Backward();
        Assert.Equal([3f, -3f, 7f], x.Grad!.ToArray());
    }

    [Fact]
    public void Backward_TwiceOnFreshGraphs_AccumulatesLikePyTorch()
    {
        Tensor w = Tensor.FromData([2f], 1);
        w.RequiresGrad = true;
        Functional.Sum(Functional.Scale(w, 3f)).Backward();
        Functional.Sum(Functional.Scale(w, 3f)).Backward();
        Assert.Equal(6f, w.Grad!.Item());
    }

    [Fact]
    public void Backward_NonScalarWithoutGradient_SaysWhy()
    {
        Tensor x = Tensor.FromData([1f, 2f], 2);
        x.RequiresGrad = true;
        var error = Assert.Throws<InvalidOperationException>(() => Functional.Relu(x).Backward());
        Assert.Contains("one-element tensor", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NoGrad_RecordsNothingAndKeepsNoGraph()
    {
        Tensor x = Tensor.FromData([1f, 2f], 2);
        x.RequiresGrad = true;
        Tensor y;
        using (GradMode.NoGrad())
        {
            y = Functional.Tanh(x);
        }

        Assert.False(y.RequiresGrad);
        Assert.True(y.IsLeaf);
        Assert.True(GradMode.IsEnabled);
    }

    [Fact]
    public void Backward_ReleasesIntermediatesButKeepsRetainedOutputs()
    {
        Tensor x = Tensor.FromData([1f, 2f], 2);
        x.RequiresGrad = true;
        Tensor hidden = Functional.Tanh(x);
        Tensor kept = Functional.Scale(hidden, 2f).RetainAfterBackward();
        Tensor loss = Functional.Sum(kept);
        loss.Backward();

        Assert.Throws<ObjectDisposedException>(() => hidden.Data.Length);
        Assert.Equal(2 * MathF.Tanh(2f), kept.Data[1], 6);
        Assert.Equal(2 * (MathF.Tanh(1f) + MathF.Tanh(2f)), loss.Item(), 5);
    }

    [Fact]
    public void Reshape_SharesStorage_SurvivesDisposalOfItsSource()
    {
        Tensor x = Tensor.FromData([1f, 2f, 3f, 4f], 2, 2);
        Tensor view = x.Reshape(4);
        x.Dispose();
        Assert.Equal([1f, 2f, 3f, 4f], view.ToArray());
    }

    [Fact]
    public void Reshape_WrongElementCount_NamesBothShapes()
    {
        var error = Assert.Throws<ArgumentException>(() => Tensor.Zeros(2, 3).Reshape(4, -1, 2));
        Assert.Contains("[2, 3]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Conv2d_ChannelMismatch_SaysWhatTheWeightExpects()
    {
        var error = Assert.Throws<ArgumentException>(() => Functional.Conv2d(Tensor.Zeros(1, 1, 28, 28), Tensor.Zeros(20, 3, 5, 5)));
        Assert.Contains("input has 1 channels", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dropout_Training_ZeroesAboutPAndScalesTheRest()
    {
        Tensor x = Tensor.Full(1f, 100_000);
        x.RequiresGrad = true;
        Tensor y = Functional.Dropout(x, 0.25f, training: true, new TensorRandom(3));
        float[] values = y.ToArray();
        double zeroed = values.Count(v => v == 0f) / (double)values.Length;
        Assert.InRange(zeroed, 0.24, 0.26);
        Assert.All(values.Where(v => v != 0f), v => Assert.Equal(1f / 0.75f, v, 6));
        Functional.Sum(y).Backward();
        Assert.Equal(values, x.Grad!.ToArray());                               // the gradient is the mask
        Assert.Same(x, Functional.Dropout(x, 0.25f, training: false, new TensorRandom(3)));
    }

    [Fact]
    public void TensorRandom_SameSeedOrRestoredState_RepeatsTheSequence()
    {
        var a = new TensorRandom(42);
        var b = new TensorRandom(42);
        Assert.Equal(Enumerable.Range(0, 5).Select(_ => a.NextUInt64()), Enumerable.Range(0, 5).Select(_ => b.NextUInt64()));
        ulong[] saved = a.State;
        ulong next = a.NextUInt64();
        var c = new TensorRandom(0) { State = saved };
        Assert.Equal(next, c.NextUInt64());
        Assert.NotEqual(new TensorRandom(1).NextUInt64(), new TensorRandom(2).NextUInt64());
    }

    [Fact]
    public void Linear_DefaultInitialisation_IsPyTorchsUniformBound()
    {
        var layer = new Linear(400, 50, new TensorRandom(1));
        float bound = 1f / MathF.Sqrt(400);
        Assert.All(layer.Weight.ToArray(), v => Assert.InRange(v, -bound, bound));
        Assert.InRange(layer.Weight.ToArray().Max(), 0.95f * bound, bound); // uses the whole range
        Assert.InRange(layer.Weight.ToArray().Average(), -0.01f, 0.01f);
    }

    [Fact]
    public void AttentionMil_InferenceOnDifferentThreadCounts_GivesTheSameAttention()
    {
        var model = new AttentionMil(new AttentionMilSpec(), new TensorRandom(9));
        model.Eval();
        Tensor bag = Tensor.Empty(64, 3, 28, 28);
        new TensorRandom(10).FillUniform(bag.Data, 0f, 1f);
        int threads = EngineThreads.Count;
        try
        {
            float[][] attention = new[] { 1, 2 }.Select(n =>
            {
                EngineThreads.Set(n);
                using (GradMode.NoGrad())
                {
                    return model.Forward(bag).Attention.ToArray();
                }
            }).ToArray();
            Assert.Equal(attention[0], attention[1]); // bit for bit: GEMMs are split by size, not by thread count
        }
        finally
        {
            EngineThreads.Set(threads);
        }
    }

    [Fact]
    public void Training_SameSeedOnOneOrTwoThreads_GivesIdenticalParameters()
    {
        Tensor bag = Tensor.Empty(40, 3, 28, 28);
        new TensorRandom(11).FillUniform(bag.Data, 0f, 1f);
        int threads = EngineThreads.Count;
        try
        {
            float[][] trained = new[] { 1, 2, 1 }.Select(n =>
            {
                EngineThreads.Set(n);
                var model = new AttentionMil(new AttentionMilSpec(), new TensorRandom(12));
                var adam = new SlidePlugin.Engine.Optim.Adam(model.Parameters(), learningRate: 5e-4f, weightDecay: 1e-4f);
                for (int step = 0; step < 3; step++)
                {
                    adam.ZeroGrad();
                    model.Loss(model.Forward(bag), step % 2).Backward();
                    adam.Step();
                }

                return model.Parameters().SelectMany(p => p.ToArray()).ToArray();
            }).ToArray();

            // Bit for bit under any BLAS kernel: GEMMs are split by size, not by thread count, and partial gradients are
            // summed in a fixed order.
            Assert.Equal(trained[0], trained[1]);
            Assert.Equal(trained[0], trained[2]);
        }
        finally
        {
            EngineThreads.Set(threads);
        }
    }

    [Fact]
    public void AttentionMil_WrongBagShape_SaysWhatItTakes()
    {
        var model = new AttentionMil(new AttentionMilSpec { Channels = 1 }, new TensorRandom(1));
        var error = Assert.Throws<ArgumentException>(() => model.Forward(Tensor.Zeros(4, 3, 28, 28)));
        Assert.Contains("[N, 1, 28, 28]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EngineThreads_OpenBlasKernels_AreChosenForThisCpu()
    {
        // OpenBLAS 0.3.21 falls back to Prescott (SSE3) on CPUs it does not know; the engine picks by instruction set.
        string core = EngineThreads.BlasCoreName();
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported)
        {
            Assert.NotEqual("Prescott", core);
        }
    }
}
