using SlidePlugin.Engine.IO;

namespace SlidePlugin.Engine.Tests.IO;

public sealed class AtomicFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-atomic").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void WriteTogether_LaterWriterFails_NeitherFileChangesAndNoTemporaryStays()
    {
        string weights = Path.Combine(_folder, "m.safetensors"), card = Path.Combine(_folder, "m.json");
        File.WriteAllText(weights, "old weights");
        File.WriteAllText(card, "old card");

        Assert.Throws<InvalidOperationException>(() => AtomicFile.WriteTogether(
        [
            new AtomicPart(weights, ".safetensors", temporary => File.WriteAllText(temporary, "new weights")),
            new AtomicPart(card, "", _ => throw new InvalidOperationException("the card cannot be written")),
        ]));

        Assert.Equal("old weights", File.ReadAllText(weights));
        Assert.Equal("old card", File.ReadAllText(card));
        Assert.Equal(2, Directory.GetFiles(_folder).Length);
    }

    [Fact]
    public void WriteTogether_AllWritersSucceed_EachFileHoldsItsContentAndLaterWritersSeeEarlierResults()
    {
        string weights = Path.Combine(_folder, "m.safetensors"), card = Path.Combine(_folder, "m.json");
        long length = 0;

        AtomicFile.WriteTogether(
        [
            new AtomicPart(weights, ".safetensors", temporary =>
            {
                File.WriteAllText(temporary, "weights");
                length = new FileInfo(temporary).Length;
            }),
            new AtomicPart(card, "", temporary => File.WriteAllText(temporary, $"card of {length} bytes")),
        ]);

        Assert.Equal("weights", File.ReadAllText(weights));
        Assert.Equal("card of 7 bytes", File.ReadAllText(card));
        Assert.Equal(2, Directory.GetFiles(_folder).Length);
    }
}
