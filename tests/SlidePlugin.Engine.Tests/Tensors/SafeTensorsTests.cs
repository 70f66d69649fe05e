using System.Buffers.Binary;
using System.Text;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Mil;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Tests.Tensors;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-safetensors").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Save_ThenLoad_ReturnsSameTensorsShapesAndMetadata()
    {
        string path = Path.Combine(_folder, "w.safetensors");
        var tensors = new Dictionary<string, Tensor>
        {
            ["b.weight"] = Tensor.FromData([1f, -2f, 3.5f, float.MaxValue, float.Epsilon, -0f], 2, 3),
            ["a.bias"] = Tensor.FromData([0.25f], 1),
            ["scalar"] = Tensor.Scalar(7f),
        };

        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        SafeTensorsFile file = SafeTensors.Load(path);

        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(tensors.Keys.Order(), file.Entries.Keys.Order());
        foreach ((string name, Tensor tensor) in tensors)
        {
            Assert.Equal(tensor.Shape, file.Entries[name].Shape);
            Assert.Equal("F32", file.Entries[name].Dtype);
            Assert.Equal(tensor.ToArray(), file.ToTensor(name).ToArray());
        }

        // The data starts 8-byte aligned, as the reference writer pads it.
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(path)) % 8);
    }

    [Theory]
    [InlineData(4, "too short for the 8-byte header length")]
    [InlineData(-1, "only")] // header length larger than the file: a truncated file
    public void Load_TruncatedFile_IsRejectedWithReason(int keepBytes, string reason)
    {
        byte[] bytes = ValidFile();
        byte[] truncated = keepBytes >= 0 ? bytes[..keepBytes] : bytes[..20];
        SafeTensorsException error = Assert.Throws<SafeTensorsException>(() => SafeTensors.Parse("t.safetensors", truncated));
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        Assert.Contains("t.safetensors", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_DataCutShort_NamesTheTensorOutsideTheData()
    {
        byte[] bytes = ValidFile();
        SafeTensorsException error = Assert.Throws<SafeTensorsException>(() => SafeTensors.Parse("t", bytes[..^4]));
        Assert.Contains("outside the", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "overlapping")]
    [InlineData("""{"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}""", 8, "unknown dtype 'Q7'")]
    [InlineData("""{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "needs 12")]
    [InlineData("""{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 12, "after the last tensor")]
    [InlineData("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "outside every tensor")]
    [InlineData("""{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, "data offsets")]
    [InlineData("""{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "negative dimension")]
    [InlineData("""{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8, "twice")]
    [InlineData("""{"w":{"dtype":"F32","shape":[2]}}""", 8, "not valid safetensors JSON")]
    [InlineData("""[1,2]""", 0, "not a JSON object")]
    [InlineData("""{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]""", 8, "not valid safetensors JSON")]
    [InlineData("""{"__metadata__":{"n":1}}""", 0, "not a string")]
    public void Parse_CorruptHeader_IsRejectedWithReason(string header, int dataBytes, string reason)
    {
        SafeTensorsException error = Assert.Throws<SafeTensorsException>(() => SafeTensors.Parse("c.safetensors", FileWith(header, dataBytes)));
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_HeaderLengthBeyondLimit_IsRejectedBeforeReading()
    {
        byte[] bytes = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue);
        SafeTensorsException error = Assert.Throws<SafeTensorsException>(() => SafeTensors.Parse("huge", bytes));
        Assert.Contains("more than the", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ToTensor_OtherFloatAndIntegerDtypes_ConvertToFloat32()
    {
        byte[] data = new byte[8 + 2 + 8];
        BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(0), (Half)1.5f);
        BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(2), (Half)(-2f));
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(4), 0x3F80);  // BF16 1.0
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(6), 0xC040);  // BF16 -3.0
        data[8] = 0; data[9] = 0;                                           // padding tensor of U8
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(10), 12345);
        string header = """{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},"u":{"dtype":"U8","shape":[2],"data_offsets":[8,10]},"n":{"dtype":"I64","shape":[],"data_offsets":[10,18]}}""";
        SafeTensorsFile file = SafeTensors.Parse("mixed", FileWith(header, data));

        Assert.Equal([1.5f, -2f], file.ToTensor("h").ToArray());
        Assert.Equal([1f, -3f], file.ToTensor("b").ToArray());
        Assert.Equal(12345f, file.ToTensor("n").Item());
    }

    [Fact]
    public void ModelCheckpoint_SaveThenLoad_RebuildsTheModelFromItsCard()
    {
        string path = Path.Combine(_folder, "model.safetensors");
        var spec = new AttentionMilSpec { Attention = MilAttention.Attention, Channels = 1, PatchSize = 28 };
        var model = new AttentionMil(spec, new TensorRandom(5));
        ModelCard written = ModelCheckpoint.Save(path, model, new ModelCard { Name = "mnist", Classes = ["other", "nine"], Mpp = null, TrainingData = "MNIST-bags" });

        (AttentionMil loaded, ModelCard card) = ModelCheckpoint.Load(path);

        Assert.Equal(spec, loaded.Spec);
        Assert.Equal("attention-mil", card.Architecture);
        Assert.Equal(written.WeightsSha256, ModelCheckpoint.Sha256Of(path));
        Assert.False(loaded.IsTraining);
        foreach (((string name, Tensor a), (string _, Tensor b)) in model.NamedParameters().Zip(loaded.NamedParameters()))
        {
            Assert.True(a.ToArray().SequenceEqual(b.ToArray()), $"{name} differs after loading.");
        }

        Assert.Contains("\"architecture\": \"attention-mil\"", File.ReadAllText(ModelCheckpoint.CardPathFor(path)), StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_folder, "*.tmp*"));
    }

    [Fact]
    public void ModelCheckpoint_SubnormalWeights_LoadAsZeroAndTheRestUnchanged()
    {
        string path = Path.Combine(_folder, "subnormal.safetensors");
        var model = new AttentionMil(new AttentionMilSpec(), new TensorRandom(4));
        Span<float> weights = model.NamedParameters().First(p => p.Name == "feature_extractor_part1.0.weight").Parameter.Data;
        weights[0] = 1e-40f;           // subnormal: what weight decay leaves behind
        weights[1] = -3e-39f;          // subnormal
        weights[2] = 1.2e-38f;         // the smallest normal floats stay
        float[] before = weights.ToArray();
        ModelCheckpoint.Save(path, model, new ModelCard());

        (AttentionMil loaded, _) = ModelCheckpoint.Load(path);

        float[] after = loaded.NamedParameters().First(p => p.Name == "feature_extractor_part1.0.weight").Parameter.ToArray();
        Assert.Equal(0f, after[0]);
        Assert.Equal(0f, after[1]);
        Assert.Equal(1.2e-38f, after[2]);
        Assert.Equal(before[3..], after[3..]);
    }

    [Fact]
    public void ModelCheckpoint_WeightsChangedAfterTheCard_IsRejected()
    {
        string path = Path.Combine(_folder, "model.safetensors");
        ModelCheckpoint.Save(path, new AttentionMil(new AttentionMilSpec(), new TensorRandom(1)), new ModelCard());
        ModelCheckpoint.Save(Path.Combine(_folder, "other.safetensors"), new AttentionMil(new AttentionMilSpec(), new TensorRandom(2)), new ModelCard());
        File.Copy(Path.Combine(_folder, "other.safetensors"), path, overwrite: true);

        ModelCheckpointException error = Assert.Throws<ModelCheckpointException>(() => ModelCheckpoint.Load(path));
        Assert.Contains("SHA-256 differs", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ModelCheckpoint_WithoutCard_SaysWhichFileIsMissing()
    {
        string path = Path.Combine(_folder, "model.safetensors");
        ModelCheckpoint.Save(path, new AttentionMil(new AttentionMilSpec(), new TensorRandom(1)), new ModelCard());
        File.Delete(ModelCheckpoint.CardPathFor(path));

        FileNotFoundException error = Assert.Throws<FileNotFoundException>(() => ModelCheckpoint.Load(path));
        Assert.Contains("model.json", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LoadWeights_WrongNamesAndShapes_ListsEveryProblemAndLeavesTheModelUntouched()
    {
        string path = Path.Combine(_folder, "w.safetensors");
        var model = new AttentionMil(new AttentionMilSpec(), new TensorRandom(1));
        var state = model.StateDict().ToDictionary(p => p.Key, p => p.Value.Detach());
        state.Remove("classifier.0.bias");
        state["extra.weight"] = Tensor.Zeros(2);
        state["attention_V.0.weight"] = Tensor.Zeros(128, 499);
        state["feature_extractor_part2.0.weight"].Data.Fill(42f);  // would change the model if loading were partial
        SafeTensors.Save(path, state);
        float[] before = model.StateDict()["feature_extractor_part2.0.weight"].ToArray();

        ModelCheckpointException error = Assert.Throws<ModelCheckpointException>(() =>
            ModelCheckpoint.LoadWeights(model, SafeTensors.Load(path), path));

        Assert.Contains("missing 'classifier.0.bias'", error.Message, StringComparison.Ordinal);
        Assert.Contains("unexpected 'extra.weight'", error.Message, StringComparison.Ordinal);
        Assert.Contains("'attention_V.0.weight' has shape [128, 499], the model expects [128, 500]", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, model.StateDict()["feature_extractor_part2.0.weight"].ToArray());
    }

    [Fact]
    public void LoadWeights_IntegerParameter_IsRejectedByName()
    {
        string header = """{"classifier.0.bias":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}""";
        SafeTensorsFile file = SafeTensors.Parse("ints", FileWith(header, 4));
        ModelCheckpointException error = Assert.Throws<ModelCheckpointException>(() =>
            ModelCheckpoint.LoadWeights(new AttentionMil(new AttentionMilSpec(), new TensorRandom(1)), file, "ints"));
        Assert.Contains("'classifier.0.bias' is I32", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ModelCard_InconsistentClasses_IsRejected()
    {
        string json = new ModelCard { Architecture = "gated-attention-mil", Classes = ["a", "b", "c"] }.ToJson();
        ModelCheckpointException error = Assert.Throws<ModelCheckpointException>(() => ModelCard.Parse(json, "card.json"));
        Assert.Contains("3 classes for a model with 2", error.Message, StringComparison.Ordinal);
    }

    private static byte[] ValidFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"valid-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafeTensors.Save(path, new Dictionary<string, Tensor> { ["w"] = Tensor.FromData([1f, 2f, 3f, 4f], 2, 2) });
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static byte[] FileWith(string header, int dataBytes) => FileWith(header, new byte[dataBytes]);

    private static byte[] FileWith(string header, byte[] data)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        byte[] bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        return bytes;
    }
}
