using System.Text.Json;
using Google.Protobuf;
using Serilog;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.LabelMasks;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tensors;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Sidecar.Services;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Services;

/// <summary>
/// SegmentationService and DatasetService end to end: a sidecar serving the shared slides and a scratch root holding a
/// seeded three-class FCN (2 µm/px); outputs are compared with what <see cref="SegmentationModel"/> computes in-process.
/// </summary>
public sealed class SegmentationServiceTests : IAsyncLifetime
{
    private const string Cmu = "CMU-1-Small-Region.svs";
    private readonly string _scratch = Directory.CreateTempSubdirectory("slideplugin-segmentation-rpc").FullName;
    private SidecarServer? _server;
    private readonly List<SegmentationServiceImpl> _services = [];
    private GrpcChannel _channel = null!;

    private string ModelPath => Path.Combine(_scratch, "models", "fcn.safetensors");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(ModelPath)!);
        var net = new FullyConvolutionalNet(new FcnSpec { Channels = 3, Classes = 3, Widths = [8, 16, 16] }, new TensorRandom(3));
        SegmentationCheckpoint.Save(ModelPath, net, new SegmentationCard
        {
            Name = "test-fcn",
            Classes = [.. SyntheticShapes.Table().Classes.Select(SegmentationClass.Of)],
            Mpp = 2.0,
            InputMean = [0.5f],
            InputStd = [0.5f],
            ImageLevelThreshold = null,
        });
        var roots = new SlideRoots([TestData.Path("slides"), _scratch]);
        var service = new SegmentationServiceImpl(roots, new ModelRoots([Path.GetDirectoryName(ModelPath)!]));
        _services.Add(service);
        ILogger logger = new LoggerConfiguration().MinimumLevel.Warning().WriteTo.Console().CreateLogger();
        _server = SidecarServer.Create(new ServerSettings { Listen = "127.0.0.1:0" }, logger, registry =>
        {
            service.BindTo(registry);
            new DatasetServiceImpl(roots).BindTo(registry);
        });
        await _server.StartAsync();
        _channel = SlidePluginChannel.ForAddress(_server.Addresses.Single());
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        if (_server is not null)
        {
            await _server.StopAsync();
            await _server.DisposeAsync();
        }

        _services.ForEach(s => s.Dispose());
        Directory.Delete(_scratch, recursive: true);
    }

    [Fact]
    public async Task Segment_FromPythonGrpcio_ImageAndSlideRegionOutputsEqualTheEngines()
    {
        string descriptors = Path.Combine(_scratch, "segmentation.pb");
        await File.WriteAllBytesAsync(descriptors, ProtoDescriptors.SetOf(SegmentationServiceReflection.Descriptor));
        (Raster shapes, _) = SyntheticShapes.Draw(90, disc: true, square: true, new TensorRandom(8));
        string imagePath = Path.Combine(_scratch, "shapes.png");
        await File.WriteAllBytesAsync(imagePath, ImageCodec.EncodePng(shapes));
        string outputs = Directory.CreateDirectory(Path.Combine(_scratch, "python")).FullName;

        ProcessResult run = await ExternalProcess.RunAsync(ExternalProcess.ReferencePython,
            [Path.Combine(TestData.RepositoryRoot, "tests", "interop", "segmentation_client.py"), new Uri(_server!.Addresses.Single()).Authority, descriptors,
             "fcn.safetensors", imagePath, Cmu, "400", "600", "1200", "1000", outputs], timeout: TimeSpan.FromMinutes(3));
        Assert.True(run.ExitCode == 0, run.StandardError);
        using JsonDocument observed = JsonDocument.Parse(run.StandardOutput);

        SegmentationModel model = SegmentationModel.Load(ModelPath);
        SegmentationResult image = model.SegmentImage(ImageCodec.Decode(await File.ReadAllBytesAsync(imagePath)));
        using Slide slide = Slide.Open(TestData.Path("slides", Cmu));
        SegmentationResult region = model.SegmentRegion(slide, 0.499, 400, 600, 1200, 1000);
        foreach ((string prefix, SegmentationResult expected) in new[] { ("image", image), ("slide", region) })
        {
            JsonElement seen = observed.RootElement.GetProperty(prefix);
            string[] events = [.. seen.GetProperty("events").EnumerateArray().Select(e => e.GetString()!)];
            Assert.Equal("header", events[0]);
            Assert.Equal("summary", events[^1]);
            Assert.Equal(expected.Map.MapWidth, seen.GetProperty("header").GetProperty("map_width").GetInt32());
            for (int c = 0; c < 3; c++)
            {
                Assert.Equal(SegmentationExports.ClassHeatmapPng(expected.Map, c), await File.ReadAllBytesAsync(Path.Combine(outputs, $"{prefix}-SEGMENT_OUTPUT_CLASS_HEATMAP_PNG-{c}.bin")));
            }

            LabelMask labels = LabelPalette.Decode(await File.ReadAllBytesAsync(Path.Combine(outputs, $"{prefix}-SEGMENT_OUTPUT_LABEL_PNG-0.bin")), SyntheticShapes.Table(), "labels");
            Assert.Equal(expected.Map.LabelsAtInputSize(), labels.Codes);
            Assert.Equal((expected.Map.Width, expected.Map.Height), ImageCodec.Decode(await File.ReadAllBytesAsync(Path.Combine(outputs, $"{prefix}-SEGMENT_OUTPUT_CLASS_HEATMAP_PNG-1.bin"))) is var h ? (h.Width, h.Height) : default);
            using JsonDocument geojson = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(outputs, $"{prefix}-SEGMENT_OUTPUT_GEOJSON-0.bin")));
            int features = geojson.RootElement.GetProperty("features").GetArrayLength();
            Assert.Equal(SegmentationExports.Detections(expected.Map, model.Card, expected.Placement).Count, features);
            Assert.Equal(features, seen.GetProperty("summary").GetProperty("detection_count").GetInt32());
            Assert.Equal(expected.Map.LabelCounts().Select(n => (double)n / expected.Map.Labels.Length),
                seen.GetProperty("summary").GetProperty("fractions").EnumerateArray().Select(e => e.GetDouble()));
        }

        JsonElement slideHeader = observed.RootElement.GetProperty("slide").GetProperty("header");
        Assert.Equal((299, 250), (slideHeader.GetProperty("width").GetInt32(), slideHeader.GetProperty("height").GetInt32()));
        Assert.Equal(400, slideHeader.GetProperty("level0_x").GetDouble());
        Assert.True(slideHeader.GetProperty("has_mpp").GetBoolean());
        Assert.False(observed.RootElement.GetProperty("image").GetProperty("header").GetProperty("has_mpp").GetBoolean());
    }

    [Fact]
    public async Task Segment_BadRequests_ClearStatusesAndTheServerKeepsServing()
    {
        var client = new SegmentationService.SegmentationServiceClient(_channel);
        var png = new EncodedImage { Format = ImageFormat.Png, Data = ByteString.CopyFrom(ImageCodec.EncodePng(new Raster(40, 40, 3, new byte[40 * 40 * 3]))) };

        async Task<RpcException> Fails(SegmentRequest request) => await Assert.ThrowsAsync<RpcException>(() => client.SegmentToOutputsAsync(request));

        RpcException noModel = await Fails(new SegmentRequest { Image = png });
        RpcException missingModel = await Fails(new SegmentRequest { ModelPath = "nothing.safetensors", Image = png });
        RpcException noSource = await Fails(new SegmentRequest { ModelPath = "fcn.safetensors" });
        RpcException outside = await Fails(new SegmentRequest { ModelPath = "fcn.safetensors", SlideRegion = new SlideRegion { Path = Cmu, Region = new Rect { X = 2000, Y = 0, Width = 500, Height = 500 } } });
        RpcException tooLarge = await Fails(new SegmentRequest { ModelPath = "fcn.safetensors", TargetMpp = 0.1, SlideRegion = new SlideRegion { Path = Cmu } });
        RpcException garbage = await Fails(new SegmentRequest { ModelPath = "fcn.safetensors", Image = new EncodedImage { Format = ImageFormat.Png, Data = ByteString.CopyFromUtf8("not a png") } });
        RpcException escape = await Fails(new SegmentRequest { ModelPath = "../../etc/passwd", Image = png });
        var huge = new EncodedImage { Format = ImageFormat.Png, Data = ByteString.CopyFrom(ImageCodec.EncodePng(new Raster(4097, 4096, 1, new byte[4097 * 4096]))) };   // compresses to kilobytes
        RpcException tooManyPixels = await Fails(new SegmentRequest { ModelPath = "fcn.safetensors", Image = huge });
        SegmentOutputs fine = await client.SegmentToOutputsAsync(new SegmentRequest { ModelPath = "fcn.safetensors", Image = png });

        Assert.Equal(StatusCode.InvalidArgument, noModel.StatusCode);
        Assert.Contains("model_path", noModel.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.NotFound, missingModel.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, noSource.StatusCode);
        Assert.Contains("slide_region", noSource.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, outside.StatusCode);
        Assert.Contains("not inside the 2220x2967 slide", outside.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.ResourceExhausted, tooLarge.StatusCode);
        Assert.Contains("smaller region", tooLarge.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, garbage.StatusCode);
        Assert.Contains("The image cannot be decoded", garbage.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.PermissionDenied, escape.StatusCode);
        Assert.Equal(StatusCode.ResourceExhausted, tooManyPixels.StatusCode);
        Assert.Contains("4097x4096", tooManyPixels.Status.Detail, StringComparison.Ordinal);
        Assert.Equal((10, 10), (fine.Header.MapWidth, fine.Header.MapHeight));
        Assert.Equal(3, fine.ClassHeatmapPngs.Count);
    }

    [Fact]
    public async Task Segment_ModelUnderASlideRootOnly_PermissionDeniedNamingTheModelRoots()
    {
        // The same checkpoint among the slides, outside every --model-root: models are loaded from model roots only.
        string amongSlides = Path.Combine(_scratch, "fcn-among-slides.safetensors");
        File.Copy(ModelPath, amongSlides);
        File.Copy(Path.ChangeExtension(ModelPath, ".json"), Path.ChangeExtension(amongSlides, ".json"));
        var client = new SegmentationService.SegmentationServiceClient(_channel);
        var png = new EncodedImage { Format = ImageFormat.Png, Data = ByteString.CopyFrom(ImageCodec.EncodePng(new Raster(40, 40, 3, new byte[40 * 40 * 3]))) };

        var refused = await Assert.ThrowsAsync<RpcException>(() => client.SegmentToOutputsAsync(new SegmentRequest { ModelPath = amongSlides, Image = png }));

        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        Assert.Contains("outside the model roots", refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DatasetService_GeneratedMask_CountsPaletteRoundTripAndUnknownCode()
    {
        var client = new DatasetService.DatasetServiceClient(_channel);
        string table = await File.ReadAllTextAsync(TestData.Path("bcss", "gtruth_codes.tsv"));
        var codes = new byte[50 * 30];
        for (int i = 0; i < codes.Length; i++)
        {
            codes[i] = (byte)(i % 50 < 20 ? 1 : i / 50 < 10 ? 0 : 18);   // tumor left 20 columns; right: outside_roi top 10 rows, then code 18
        }

        ByteString mask = ByteString.CopyFrom(ImageCodec.EncodePng(new Raster(50, 30, 1, codes)));

        ComputeClassStatisticsResponse stats = await client.ComputeClassStatisticsAsync(new ComputeClassStatisticsRequest { TableTsv = table, Mask = mask });
        ColorMaskResponse coloured = await client.ColorMaskAsync(new ColorMaskRequest { TableTsv = table, Mask = mask });
        MaskToCodesResponse back = await client.MaskToCodesAsync(new MaskToCodesRequest { TableTsv = table, ColoredMask = coloured.Png });
        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await client.ComputeClassStatisticsAsync(new ComputeClassStatisticsRequest
        {
            TableTsv = table,
            Mask = ByteString.CopyFrom(ImageCodec.EncodePng(new Raster(4, 4, 1, Enumerable.Repeat((byte)40, 16).ToArray()))),
        }));

        Assert.Equal(1500, stats.PixelCount);
        Assert.Equal(600, stats.Classes.Single(c => c.Code == 1).Pixels);
        Assert.Equal(300, stats.Classes.Single(c => c.Code == 0).Pixels);
        Assert.Equal(600, stats.Classes.Single(c => c.Code == 18).Pixels);
        Assert.Equal(0.4, stats.Classes.Single(c => c.Code == 18).Fraction, 12);
        Assert.Equal(codes, ImageCodec.Decode(back.Png.Span).Pixels);
        Assert.Equal(StatusCode.InvalidArgument, unknown.StatusCode);
        Assert.Contains("code 40", unknown.Status.Detail, StringComparison.Ordinal);

        // Tumor (code 1) and code 18 each hold 600 of the 1200 annotated pixels: a 0.6 share folds both into "other".
        MergeClassesResponse byMap = await client.MergeClassesAsync(new MergeClassesRequest { TableTsv = table, Mask = mask, Map = "tumor=stroma" });
        byte other = (byte)stats.Classes.Single(c => c.Name == "other").Code;
        MergeClassesResponse byShare = await client.MergeClassesAsync(new MergeClassesRequest { TableTsv = table, Mask = mask, MinFraction = 0.6 });
        Assert.Equal(codes.Select(c => c == 1 ? (byte)2 : c), ImageCodec.Decode(byMap.Png.Span).Pixels);
        Assert.Contains(byShare.Moves, m => m.FromCode == 1 && m.ToCode == other);
        Assert.Contains(byShare.Moves, m => m.FromCode == 18 && m.ToCode == other);
        Assert.Equal(codes.Select(c => c is 1 or 18 ? other : c), ImageCodec.Decode(byShare.Png.Span).Pixels);
    }

    [Fact]
    public async Task Segment_SlideRegionPastTheSizeLimit_ResourceExhaustedWithTheNumbersAndTheFields()
    {
        var client = new SegmentationService.SegmentationServiceClient(_channel);

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => client.SegmentToOutputsAsync(new SegmentRequest
        {
            ModelPath = "fcn.safetensors",
            TargetMpp = 0.1,
            SlideRegion = new SlideRegion { Path = Cmu, Region = new Rect { X = 0, Y = 0, Width = 1000, Height = 1000 } },
        }));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Contains("The region 1000x1000 (level 0 at 0.499 µm/px) read at 0.1 µm/px is 4990x4990", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("gRPC: slide_region.region, target_mpp", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DatasetService_RgbMaskAndAntiAliasedEdges_PointsToMaskToCodesWhichSnapsWithinTheTolerance()
    {
        var client = new DatasetService.DatasetServiceClient(_channel);
        string table = await File.ReadAllTextAsync(TestData.Path("bcss", "gtruth_codes.tsv"));
        byte[] rgb = [128, 0, 0, 122, 5, 3, 0, 128, 0, 0, 128, 0];   // tumor, a tumor edge 8.4 away, stroma twice
        ByteString coloured = ByteString.CopyFrom(ImageCodec.EncodePng(new Raster(4, 1, 3, rgb)));

        RpcException notCodes = await Assert.ThrowsAsync<RpcException>(async () => await client.ComputeClassStatisticsAsync(new ComputeClassStatisticsRequest { TableTsv = table, Mask = coloured }));
        RpcException exact = await Assert.ThrowsAsync<RpcException>(async () => await client.MaskToCodesAsync(new MaskToCodesRequest { TableTsv = table, ColoredMask = coloured }));
        RpcException negative = await Assert.ThrowsAsync<RpcException>(async () => await client.MaskToCodesAsync(new MaskToCodesRequest { TableTsv = table, ColoredMask = coloured, Tolerance = -1 }));
        MaskToCodesResponse near = await client.MaskToCodesAsync(new MaskToCodesRequest { TableTsv = table, ColoredMask = coloured, Tolerance = 10 });

        Assert.Equal(StatusCode.InvalidArgument, notCodes.StatusCode);
        Assert.Contains("DatasetService.MaskToCodes", notCodes.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, exact.StatusCode);
        Assert.Contains("gRPC: tolerance", exact.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, negative.StatusCode);
        Assert.Equal([1, 1, 2, 2], ImageCodec.Decode(near.Png.Span).Pixels);
        Assert.Equal(1, near.SnappedPixels);
        Assert.Equal(Math.Sqrt(70), near.LargestDistance, 9);
    }

    [Fact]
    public async Task ColorMask_MaskAnnouncing900Megapixels_ResourceExhaustedBeforeDecoding()
    {
        var client = new DatasetService.DatasetServiceClient(_channel);
        string table = await File.ReadAllTextAsync(TestData.Path("bcss", "gtruth_codes.tsv"));

        RpcException error = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.ColorMaskAsync(new ColorMaskRequest { TableTsv = table, Mask = ByteString.CopyFrom(HostilePng.Black(30000, 30000)) }));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Contains("30000x30000", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CutPatches_SlideRegionAndMask_AlignedPatchesStreamedAndMismatchRejected()
    {
        var client = new DatasetService.DatasetServiceClient(_channel);
        string table = await File.ReadAllTextAsync(TestData.Path("bcss", "gtruth_codes.tsv"));
        var codes = new byte[300 * 260];
        for (int i = 0; i < codes.Length; i++)
        {
            codes[i] = (byte)(i % 300 < 100 ? 1 : i / 300 < 20 ? 0 : 2);   // tumor left third; elsewhere outside_roi in the top 20 rows, then stroma
        }

        var request = new CutPatchesRequest
        {
            TableTsv = table,
            SlideRegion = new SlideRegion { Path = Cmu, Region = new Rect { X = 100, Y = 200, Width = 1200, Height = 1040 } },
            Mask = ByteString.CopyFrom(ImageCodec.EncodePng(new Raster(300, 260, 1, codes))),
            Id = "cmu",
            Size = 128,
            Stride = 128,
        };

        var patches = new List<CutPatchesResponse>();
        using (AsyncServerStreamingCall<CutPatchesResponse> call = client.CutPatches(request))
        {
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
                patches.Add(call.ResponseStream.Current);
            }
        }

        using Slide slide = Slide.Open(TestData.Path("slides", Cmu));
        Raster region = SlideRegionReader.ReadToSize(slide, 100, 200, 1200, 1040, 300, 260);
        Assert.Equal(["cmu_0_0.png", "cmu_128_0.png", "cmu_172_0.png", "cmu_0_128.png", "cmu_128_128.png", "cmu_172_128.png", "cmu_0_132.png", "cmu_128_132.png", "cmu_172_132.png"],
            patches.Select(p => p.Name));
        CutPatchesResponse last = patches[^1];
        Assert.Equal(region.Crop(172, 132, 128, 128).Pixels, ImageCodec.Decode(last.ImagePng.Span).Pixels);
        Assert.Equal(new Raster(300, 260, 1, codes).Crop(172, 132, 128, 128).Pixels, ImageCodec.Decode(last.MaskPng.Span).Pixels);
        CutPatchesResponse first = patches[0];
        Assert.Equal(128 * 100, first.Classes.Single(c => c.Code == 1).Pixels);
        Assert.Equal(1 - (20.0 * 28 / (128 * 128)), first.ValidFraction, 12);   // outside_roi: rows 0..19 of columns 100..127

        request.Image = new EncodedImage { Format = ImageFormat.Png, Data = ByteString.CopyFrom(ImageCodec.EncodePng(new Raster(299, 260, 3, new byte[299 * 260 * 3]))) };
        var mismatch = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using AsyncServerStreamingCall<CutPatchesResponse> call = client.CutPatches(request);
            await call.ResponseStream.MoveNext(CancellationToken.None);
        });
        Assert.Equal(StatusCode.InvalidArgument, mismatch.StatusCode);
        Assert.Contains("the mask is 300x260 but the image is 299x260", mismatch.Status.Detail, StringComparison.Ordinal);
    }
}
