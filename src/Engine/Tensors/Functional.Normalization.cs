namespace SlidePlugin.Engine.Tensors;

/// <summary>Batch normalisation and dropout.</summary>
public static partial class Functional
{
    /// <summary>
    /// Batch normalisation as <c>torch.nn.functional.batch_norm</c>. x: [N, C] or [N, C, ...]; statistics per channel C.
    /// Training normalises with the batch's mean and biased variance and moves the running statistics by
    /// <paramref name="momentum"/> (the running variance with the unbiased estimate, as PyTorch); inference
    /// normalises with the running statistics.
    /// </summary>
    public static Tensor BatchNorm(
        Tensor x, Tensor runningMean, Tensor runningVariance, Tensor? weight, Tensor? bias,
        bool training, float momentum = 0.1f, float epsilon = 1e-5f)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(runningMean);
        ArgumentNullException.ThrowIfNull(runningVariance);
        if (x.Rank < 2)
        {
            throw new ArgumentException($"batch_norm: input {Tensor.ShapeText(x.Shape)} must be [N, C, ...].");
        }

        int n = x.Shape[0], channels = x.Shape[1], inner = Product(x.Shape, 2, x.Rank);
        int count = n * inner;
        foreach (Tensor? parameter in new[] { runningMean, runningVariance, weight, bias })
        {
            if (parameter is not null && parameter.Length != channels)
            {
                throw new ArgumentException($"batch_norm: per-channel tensor {Tensor.ShapeText(parameter.Shape)} should have {channels} elements.");
            }
        }

        if (training && count < 2)
        {
            throw new ArgumentException($"batch_norm: training needs more than one value per channel; input is {Tensor.ShapeText(x.Shape)}.");
        }

        float[] mean = new float[channels], inverseStd = new float[channels];
        ReadOnlySpan<float> input = x.Data;
        for (int c = 0; c < channels; c++)
        {
            if (training)
            {
                double sum = 0, squares = 0;
                for (int i = 0; i < n; i++)
                {
                    foreach (float value in input.Slice(((i * channels) + c) * inner, inner))
                    {
                        sum += value;
                        squares += (double)value * value;
                    }
                }

                double batchMean = sum / count;
                double variance = Math.Max(0, (squares / count) - (batchMean * batchMean));
                mean[c] = (float)batchMean;
                inverseStd[c] = (float)(1.0 / Math.Sqrt(variance + epsilon));
                runningMean.Data[c] = ((1 - momentum) * runningMean.Data[c]) + (momentum * (float)batchMean);
                runningVariance.Data[c] = ((1 - momentum) * runningVariance.Data[c]) + (momentum * (float)(variance * count / (count - 1)));
            }
            else
            {
                mean[c] = runningMean.Data[c];
                inverseStd[c] = 1f / MathF.Sqrt(runningVariance.Data[c] + epsilon);
            }
        }

        Tensor y = Tensor.Empty(x.ShapeArray);
        Span<float> output = y.Data;
        for (int i = 0; i < n; i++)
        {
            for (int c = 0; c < channels; c++)
            {
                float scale = inverseStd[c] * (weight?.Data[c] ?? 1f), shift = (bias?.Data[c] ?? 0f) - (mean[c] * scale);
                int start = ((i * channels) + c) * inner;
                for (int k = start; k < start + inner; k++)
                {
                    output[k] = (input[k] * scale) + shift;
                }
            }
        }

        if (Autograd.ShouldRecord(x, weight, bias))
        {
            Tensor[] inputs = new[] { x, weight, bias }.OfType<Tensor>().ToArray();
            Autograd.Record("batch_norm", y, inputs, gy => BatchNormBackward(x, weight, bias, gy, mean, inverseStd, training));
        }

        return y;
    }

    private static void BatchNormBackward(Tensor x, Tensor? weight, Tensor? bias, Tensor gy, float[] mean, float[] inverseStd, bool training)
    {
        int n = x.Shape[0], channels = x.Shape[1], inner = Product(x.Shape, 2, x.Rank), count = n * inner;
        ReadOnlySpan<float> input = x.Data, g = gy.Data;
        for (int c = 0; c < channels; c++)
        {
            // Σ dy and Σ dy·x̂ over the channel.
            double sumG = 0, sumGXhat = 0;
            for (int i = 0; i < n; i++)
            {
                int start = ((i * channels) + c) * inner;
                for (int k = start; k < start + inner; k++)
                {
                    sumG += g[k];
                    sumGXhat += g[k] * (input[k] - mean[c]) * inverseStd[c];
                }
            }

            if (weight is { RequiresGrad: true })
            {
                weight.GradData()[c] += (float)sumGXhat;
            }

            if (bias is { RequiresGrad: true })
            {
                bias.GradData()[c] += (float)sumG;
            }

            if (!x.RequiresGrad)
            {
                continue;
            }

            Span<float> gx = x.GradData();
            float gamma = weight?.Data[c] ?? 1f;
            for (int i = 0; i < n; i++)
            {
                int start = ((i * channels) + c) * inner;
                for (int k = start; k < start + inner; k++)
                {
                    if (training)
                    {
                        // dx = γ·σ⁻¹/M · (M·dy − Σdy − x̂·Σ(dy·x̂))
                        float xHat = (input[k] - mean[c]) * inverseStd[c];
                        gx[k] += gamma * inverseStd[c] / count * ((count * g[k]) - (float)sumG - (xHat * (float)sumGXhat));
                    }
                    else
                    {
                        gx[k] += g[k] * gamma * inverseStd[c];
                    }
                }
            }
        }
    }

    /// <summary>
    /// Dropout as <c>torch.nn.functional.dropout</c>: in training, each element is zeroed with probability
    /// <paramref name="probability"/> and the rest scaled by 1 / (1 − p); otherwise the input is returned as is.
    /// </summary>
    public static Tensor Dropout(Tensor x, float probability, bool training, TensorRandom random)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(random);
        if (probability is < 0f or > 1f)
        {
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "dropout probability must be in [0, 1].");
        }

        if (!training || probability == 0f)
        {
            return x;
        }

        float keep = probability == 1f ? 0f : 1f / (1f - probability);
        float[] mask = new float[x.Length];
        for (int i = 0; i < mask.Length; i++)
        {
            mask[i] = random.NextFloat() >= probability ? keep : 0f;
        }

        Tensor y = Tensor.Empty(x.ShapeArray);
        System.Numerics.Tensors.TensorPrimitives.Multiply(x.Data, mask, y.Data);
        if (Autograd.ShouldRecord(x))
        {
            Autograd.Record("dropout", y, [x], gy =>
                System.Numerics.Tensors.TensorPrimitives.FusedMultiplyAdd(gy.Data, mask, x.GradData(), x.GradData()));
        }

        return y;
    }
}
