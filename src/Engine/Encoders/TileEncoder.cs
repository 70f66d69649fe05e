using System.Security.Cryptography;
using Microsoft.ML.OnnxRuntime;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Encoders;

/// <summary>
/// A pretrained tile encoder (CLAM's ResNet-50 trunk, UNI, CONCH, your own) run by ONNX Runtime: tiles in, one feature
/// vector per tile out. The model is <c>NAME.onnx</c> with its <see cref="EncoderCard"/> in <c>NAME.json</c> beside it;
/// the input is NCHW float32 RGB with a dynamic batch, the output [batch, output_dim].
/// </summary>
/// <remarks>
/// Preprocessing is ours, so it is the same for every encoder and documented once: a tile that is not
/// <c>input_size</c>² is resized with libvips (Lanczos3, area-correct when shrinking), then each pixel becomes
/// (value / 255 - mean[c]) / std[c]. Read tiles at the card's mpp so that no resize happens.
/// </remarks>
public sealed class TileEncoder : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string _inputName;
    private readonly string _outputName;
    private readonly float[] _scale = new float[3];
    private readonly float[] _shift = new float[3];

    private TileEncoder(InferenceSession session, EncoderCard card, string modelPath, string inputName, string outputName, EncoderDevice device)
    {
        _session = session;
        Card = card;
        ModelPath = modelPath;
        Device = device;
        _inputName = inputName;
        _outputName = outputName;
        using (FileStream model = File.OpenRead(modelPath))
        {
            Sha256 = Convert.ToHexStringLower(SHA256.HashData(model)); // streamed: foundation encoders are gigabytes
        }
        for (int c = 0; c < 3; c++)
        {
            // (v / 255 - mean) / std as one multiply-add per value.
            _scale[c] = 1f / (255f * card.Std[c]);
            _shift[c] = -card.Mean[c] / card.Std[c];
        }
    }

    /// <summary>The card: input size, mpp, normalisation, output size.</summary>
    public EncoderCard Card { get; }

    /// <summary>The ONNX file.</summary>
    public string ModelPath { get; }

    /// <summary>SHA-256 of the ONNX file, hex: names these exact weights in feature files and stores.</summary>
    public string Sha256 { get; }

    /// <summary>Where it runs.</summary>
    public EncoderDevice Device { get; }

    /// <summary>The execution providers this build of ONNX Runtime has (e.g. CPUExecutionProvider, CUDAExecutionProvider).</summary>
    public static IReadOnlyList<string> AvailableProviders => OrtEnv.Instance().GetAvailableProviders();

    /// <summary>Loads <paramref name="modelPath"/> and the card beside it, checking one against the other.</summary>
    /// <param name="modelPath">The <c>.onnx</c> file.</param>
    /// <param name="device">CPU (threads: <see cref="EngineThreads.Count"/>, <c>SLIDEPLUGIN_THREADS</c>) or a CUDA device.</param>
    /// <exception cref="EncoderException">Missing files, a card that does not fit the model, or a device this build or machine lacks; the message says which.</exception>
    public static TileEncoder Load(string modelPath, EncoderDevice device = default)
    {
        ArgumentNullException.ThrowIfNull(modelPath);
        if (!File.Exists(modelPath))
        {
            throw new EncoderException($"The encoder '{modelPath}' does not exist.");
        }

        EncoderCard card = EncoderCard.Load(Path.ChangeExtension(modelPath, ".json"));
        var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = EngineThreads.Count,
            InterOpNumThreads = 1,
        };
        InferenceSession session;
        try
        {
            if (device.CudaDevice is { } index)
            {
                UseCuda(options, index);
            }

            session = new InferenceSession(modelPath, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw device.CudaDevice is null
                ? new EncoderException($"ONNX Runtime cannot load the encoder '{modelPath}': {e.Message}", e)
                : new EncoderException(CudaMissing(device, e.Message), e);
        }
        finally
        {
            options.Dispose();
        }

        try
        {
            (string input, string output) = Check(session, card, modelPath);
            return new TileEncoder(session, card, modelPath, input, output, device);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>The features of <paramref name="tiles"/> (RGB, resized to the card's input size when they have another), row-major [tiles.Count, output_dim].</summary>
    /// <exception cref="ArgumentException">A tile that is not 3-band RGB.</exception>
    public float[] Encode(IReadOnlyList<Raster> tiles)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        int size = Card.InputSize;
        float[] input = new float[tiles.Count * 3 * size * size]; // [n, 3, size, size]
        for (int i = 0; i < tiles.Count; i++)
        {
            Raster tile = tiles[i];
            if (tile.Bands != 3)
            {
                throw new ArgumentException($"Tile {i} has {tile.Bands} bands; the encoder takes RGB.", nameof(tiles));
            }

            Normalize(Slide.Scaled(tile, size, size).Pixels, input.AsSpan(i * 3 * size * size, 3 * size * size));
        }

        return Run(input, tiles.Count);
    }

    /// <summary>
    /// The features of <paramref name="count"/> tiles of interleaved RGB at the card's input size (tile, row, column, channel),
    /// row-major [count, output_dim]: the bytes go straight into the model's input, with no copy per tile.
    /// </summary>
    public float[] Encode(ReadOnlySpan<byte> pixels, int count)
    {
        int size = Card.InputSize, tileBytes = size * size * 3;
        if (count < 0 || (long)count * tileBytes != pixels.Length)
        {
            throw new ArgumentException($"{pixels.Length} bytes are not {count} RGB tiles of {size}x{size}.", nameof(pixels));
        }

        float[] input = new float[count * tileBytes];
        for (int i = 0; i < count; i++)
        {
            Normalize(pixels.Slice(i * tileBytes, tileBytes), input.AsSpan(i * tileBytes, tileBytes));
        }

        return Run(input, count);
    }

    /// <summary>One tile's interleaved RGB as the model's planes [3, size, size]: (value / 255 − mean) / std.</summary>
    private void Normalize(ReadOnlySpan<byte> pixels, Span<float> planes)
    {
        int plane = planes.Length / 3;
        for (int c = 0; c < 3; c++)
        {
            float scale = _scale[c], shift = _shift[c];
            Span<float> channel = planes.Slice(c * plane, plane);
            for (int p = 0; p < plane; p++)
            {
                channel[p] = (pixels[(p * 3) + c] * scale) + shift;
            }
        }
    }

    /// <summary>Runs the session on <paramref name="n"/> normalised tiles [n, 3, size, size].</summary>
    private float[] Run(float[] input, int n)
    {
        if (n == 0)
        {
            return [];
        }

        int size = Card.InputSize;
        using OrtValue value = OrtValue.CreateTensorValueFromMemory(input, [n, 3, size, size]);
        using var runOptions = new RunOptions();
        using IDisposableReadOnlyCollection<OrtValue> outputs = _session.Run(runOptions, [_inputName], [value], [_outputName]);
        ReadOnlySpan<float> features = outputs[0].GetTensorDataAsSpan<float>();
        return features.Length == n * Card.OutputDim
            ? features.ToArray()
            : throw new EncoderException($"The encoder '{ModelPath}' returned {features.Length} values for {n} tiles, not {n} x {Card.OutputDim}.");
    }

    /// <inheritdoc />
    public void Dispose() => _session.Dispose();

    private static void UseCuda(SessionOptions options, int index)
    {
        if (!AvailableProviders.Contains("CUDAExecutionProvider"))
        {
            throw new EncoderException(CudaMissing(new EncoderDevice(index),
                $"this build of ONNX Runtime has only {string.Join(", ", AvailableProviders)}"));
        }

        try
        {
            options.AppendExecutionProvider_CUDA(index);
        }
        catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException)
        {
            throw new EncoderException(CudaMissing(new EncoderDevice(index), e.Message), e);
        }
    }

    private static string CudaMissing(EncoderDevice device, string why) =>
        $"--device {device} needs ONNX Runtime's CUDA build and the CUDA libraries: {why}. Build with the GPU package " +
        "(dotnet build -p:SlidePluginGpu=true, which takes Microsoft.ML.OnnxRuntime.Gpu.Linux), install CUDA 12 and cuDNN 9 " +
        "(libcudart.so.12, libcublas.so.12, libcudnn.so.9 on the library path) and an NVIDIA driver; see docs/gpu.md. Without them, use --device cpu.";

    private static (string Input, string Output) Check(InferenceSession session, EncoderCard card, string modelPath)
    {
        if (session.InputMetadata.Count != 1 || session.OutputMetadata.Count != 1)
        {
            throw new EncoderException($"The encoder '{modelPath}' has {session.InputMetadata.Count} inputs and {session.OutputMetadata.Count} outputs; a tile encoder has one of each.");
        }

        (string input, NodeMetadata inputMeta) = session.InputMetadata.Single();
        (string output, NodeMetadata outputMeta) = session.OutputMetadata.Single();
        int[] inDims = inputMeta.Dimensions, outDims = outputMeta.Dimensions;
        string Shape(int[] dims) => "[" + string.Join(", ", dims.Select(d => d < 0 ? "?" : d.ToString(System.Globalization.CultureInfo.InvariantCulture))) + "]";
        if (inputMeta.ElementType != typeof(float) || inDims.Length != 4 || inDims[1] != 3
            || (inDims[2] >= 0 && inDims[2] != card.InputSize) || (inDims[3] >= 0 && inDims[3] != card.InputSize))
        {
            throw new EncoderException($"The encoder '{modelPath}' takes {inputMeta.ElementType.Name} {Shape(inDims)}; its card says float [batch, 3, {card.InputSize}, {card.InputSize}] (NCHW RGB).");
        }

        if (outDims.Length != 2 || (outDims[1] >= 0 && outDims[1] != card.OutputDim))
        {
            throw new EncoderException($"The encoder '{modelPath}' gives {Shape(outDims)}; its card says [batch, {card.OutputDim}] (output_dim).");
        }

        if (inDims[0] >= 0)
        {
            throw new EncoderException($"The encoder '{modelPath}' takes batches of exactly {inDims[0]}; export it with a dynamic batch dimension.");
        }

        return (input, output);
    }
}
