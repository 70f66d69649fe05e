using System.Text.Json;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Encoders;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Encoders;

/// <summary>Feature files of CMU-1-Small-Region from the small exported encoder: content, layout, resumption, reuse.</summary>
public sealed class FeatureExtractorTests : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-features").FullName;
    private string _model = "";

    public async Task InitializeAsync()
    {
        _model = Path.Combine(_folder, "small.onnx");
        await TestEncoders.ExportSmallAsync(Path.ChangeExtension(_model, null));
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_folder, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task ExtractAsync_Cmu_FeaturesAndCoordsOfEveryTissueTileInGridOrderReadableByNumpy()
    {
        using TileEncoder encoder = TileEncoder.Load(_model);
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        double mpp = slide.RequireMpp();
        (TileGrid grid, _) = TileGrid.OverTissue(slide, mpp, new TileGridOptions { TileSize = 96, TargetMpp = 0.5, MinTissueFraction = 0.5 });

        (string path, bool reused) = await FeatureExtractor.ExtractAsync(slide, mpp, encoder, new FeatureOptions(), Path.Combine(_folder, "out"));

        SafeTensorsFile file = SafeTensors.Load(path);
        int n = grid.Tiles.Count, dim = encoder.Card.OutputDim;
        Assert.False(reused);
        Assert.Equal([n, 4], file.Entries["coords"].Shape);
        Assert.Equal("I64", file.Entries["coords"].Dtype);
        Assert.Equal([n, dim], file.Entries["features"].Shape);
        float[] features = file.ToTensor("features").ToArray();
        float[] coords = file.ToTensor("coords").ToArray(); // I64 converted: exact below 2^24
        for (int i = 0; i < n; i++)
        {
            Tile tile = grid.Tiles[i];
            Assert.Equal([tile.X, tile.Y, tile.Width, tile.Height], coords.AsSpan(i * 4, 4).ToArray().Select(v => (long)v));
        }

        foreach (int i in new[] { 0, 31, 32, n - 1 }) // across batch edges
        {
            float[] alone = encoder.Encode([grid.Read(slide, grid.Tiles[i])]);
            for (int d = 0; d < dim; d++)
            {
                Assert.True(Math.Abs(alone[d] - features[(i * dim) + d]) <= 1e-5 * (1 + Math.Abs(alone[d])), $"tile {i} feature {d}");
            }
        }

        Assert.Equal(encoder.Sha256, file.Metadata["encoder_sha256"]);
        Assert.Equal("0.5", file.Metadata["mpp"]);
        Assert.Equal("96", file.Metadata["tile_size"]);
        Assert.Equal(slide.Properties["openslide.quickhash-1"], file.Metadata["slide_quickhash"]);

        // The layout is plain safetensors: numpy alone reads the same numbers.
        string numpy = await ExternalProcess.RunAsync(ExternalProcess.ReferencePython, ["-c", """
            import json, sys, numpy as np
            raw = open(sys.argv[1], 'rb').read()
            n = int.from_bytes(raw[:8], 'little'); header = json.loads(raw[8:8 + n]); data = raw[8 + n:]
            f = header['features']; c = header['coords']
            feats = np.frombuffer(data[f['data_offsets'][0]:f['data_offsets'][1]], '<f4').reshape(f['shape'])
            xy = np.frombuffer(data[c['data_offsets'][0]:c['data_offsets'][1]], '<i8').reshape(c['shape'])
            print(json.dumps({'shape': list(feats.shape), 'sum': float(feats.astype(np.float64).sum()), 'x_last': int(xy[-1, 0]), 'encoder': header['__metadata__']['encoder']}))
            """, path]) is { ExitCode: 0 } run ? run.StandardOutput : throw new InvalidOperationException("numpy could not read the file");
        using JsonDocument seen = JsonDocument.Parse(numpy);
        Assert.Equal([n, dim], seen.RootElement.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(features.Sum(f => (double)f), seen.RootElement.GetProperty("sum").GetDouble(), 6);
        Assert.Equal(grid.Tiles[^1].X, seen.RootElement.GetProperty("x_last").GetInt64());
        Assert.Equal(encoder.Card.Name, seen.RootElement.GetProperty("encoder").GetString());
    }

    [Fact]
    public async Task ExtractAsync_CancelledAfterTwoBatches_ResumesToTheUninterruptedFileByteForByte()
    {
        using TileEncoder encoder = TileEncoder.Load(_model);
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        double mpp = slide.RequireMpp();
        string whole = Path.Combine(_folder, "whole"), resumed = Path.Combine(_folder, "resumed");
        (string wholePath, _) = await FeatureExtractor.ExtractAsync(slide, mpp, encoder, new FeatureOptions(), whole);

        using var stop = new CancellationTokenSource();
        var progress = new Inline(p =>
        {
            if (p.Done >= 64)
            {
                stop.Cancel();
            }
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => FeatureExtractor.ExtractAsync(slide, mpp, encoder, new FeatureOptions(), resumed, progress, stop.Token));
        string batches = FeatureExtractor.PathFor(resumed, slide.Path) + ".batches";
        int kept = Directory.GetFiles(batches, "batch-*.f32").Length;
        var reported = new List<int>();
        (string resumedPath, bool reused) = await FeatureExtractor.ExtractAsync(slide, mpp, encoder, new FeatureOptions(), resumed, new Inline(p => reported.Add(p.Done)));

        Assert.InRange(kept, 2, 7); // at least the two batches before the cancel; not the whole slide (8 batches)
        Assert.False(reused);
        Assert.Equal(kept * 32, reported[0]); // the resumed run starts from the kept batches
        Assert.Equal(await File.ReadAllBytesAsync(wholePath), await File.ReadAllBytesAsync(resumedPath));
        Assert.False(Directory.Exists(batches));
    }

    [Fact]
    public async Task ExtractAsync_SameEncoderAndTiling_ReusedOtherTiling_Extracted()
    {
        using TileEncoder encoder = TileEncoder.Load(_model);
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));
        double mpp = slide.RequireMpp();
        string folder = Path.Combine(_folder, "reuse");
        (string path, _) = await FeatureExtractor.ExtractAsync(slide, mpp, encoder, new FeatureOptions(), folder);
        DateTime written = File.GetLastWriteTimeUtc(path);

        (_, bool again) = await FeatureExtractor.ExtractAsync(slide, mpp, encoder, new FeatureOptions(), folder);
        (_, bool otherTissue) = await FeatureExtractor.ExtractAsync(slide, mpp, encoder, new FeatureOptions { MinTissueFraction = 0.9 }, folder);

        Assert.True(again);
        Assert.False(otherTissue);
        Assert.Equal("0.9", SafeTensors.ReadMetadata(path)["min_tissue_fraction"]);
        Assert.True(File.GetLastWriteTimeUtc(path) >= written);
    }

    /// <summary>Reports on the caller's thread, at once (Progress{T} posts to the pool).</summary>
    private sealed class Inline(Action<(int Done, int Total)> report) : IProgress<(int Done, int Total)>
    {
        public void Report((int Done, int Total) value) => report(value);
    }
}
