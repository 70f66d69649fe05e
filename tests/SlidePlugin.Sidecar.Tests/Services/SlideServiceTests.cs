using System.Text.Json;
using System.Xml.Linq;
using SlidePlugin.Engine.Imaging;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Services;

/// <summary>SlideService over gRPC (our client, our server), compared with openslide-python where it has an answer.</summary>
public sealed class SlideServiceTests(SlideServerFixture server) : IClassFixture<SlideServerFixture>
{
    private const string Cmu = "CMU-1-Small-Region.svs";

    private SlideService.SlideServiceClient Client => server.Client;

    private static async Task<RpcException> FailsAsync(Func<Task> call) => await Assert.ThrowsAsync<RpcException>(call);

    [Fact]
    public async Task GetSlideInfo_Cmu_EqualsOpenSlidePython()
    {
        using JsonDocument reference = JsonDocument.Parse(await ExternalProcess.RunReferenceScriptAsync("openslide_metadata.py", TestData.Path("slides", Cmu)));
        JsonElement expected = reference.RootElement;

        GetSlideInfoResponse info = await Client.GetSlideInfoAsync(new GetSlideInfoRequest { Path = Cmu });

        Assert.Equal("aperio", info.Vendor);
        Assert.Equal(expected.GetProperty("level_dimensions").EnumerateArray().Select(d => (d[0].GetInt64(), d[1].GetInt64())), info.Levels.Select(l => (l.Width, l.Height)));
        Assert.Equal(expected.GetProperty("properties").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!), info.Properties);
        Assert.Equal(expected.GetProperty("associated_images").EnumerateObject().Select(p => (p.Name, p.Value[0].GetInt64(), p.Value[1].GetInt64())).Order(),
            info.AssociatedImages.Select(a => (a.Name, a.Width, a.Height)).Order());
        Assert.Equal(MppSource.Openslide, info.Resolution.Source);
        Assert.Equal(0.499, info.Resolution.MppX, 3);
        Assert.Equal(20, info.ObjectivePower);
        Assert.Equal(expected.GetProperty("properties").GetProperty("openslide.quickhash-1").GetString(), info.Quickhash);
    }

    [Fact]
    public async Task GetSlideInfo_SlideWithoutMpp_SaysSoAndTakesAnOverride()
    {
        GetSlideInfoResponse plain = await Client.GetSlideInfoAsync(new GetSlideInfoRequest { Path = "boxes.tiff" });
        GetSlideInfoResponse overridden = await Client.GetSlideInfoAsync(new GetSlideInfoRequest { Path = "boxes.tiff", MppOverride = 0.5 });

        Assert.Equal(MppSource.Unspecified, plain.Resolution.Source);
        Assert.False(plain.Resolution.HasMppX);
        Assert.NotEmpty(plain.Resolution.Explanation);
        Assert.Equal(MppSource.Override, overridden.Resolution.Source);
        Assert.Equal(0.5, overridden.Resolution.MppX);
    }

    [Fact]
    public async Task StreamTiles_SlideWithoutMpp_InvalidArgumentNamingTheOverride()
    {
        using AsyncServerStreamingCall<StreamTilesResponse> call = Client.StreamTiles(new StreamTilesRequest { Path = "boxes.tiff", TargetMpp = 0.5 });

        RpcException error = await FailsAsync(async () => await call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("mpp_override", error.Status.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 0, ImageFormat.Png, StatusCode.InvalidArgument)]
    [InlineData(1048576, 1, ImageFormat.Jpeg, StatusCode.InvalidArgument)]
    [InlineData(-5, 10, ImageFormat.Png, StatusCode.InvalidArgument)]
    public async Task ReadRegion_DegenerateSizes_InvalidArgumentNotInternal(int width, int height, ImageFormat format, StatusCode expected)
    {
        RpcException error = await FailsAsync(() => Client.ReadRegionAsync(new ReadRegionRequest
        {
            Path = Cmu, Width = width, Height = height, Encoding = new ImageEncoding { Format = format },
        }).ResponseAsync);

        Assert.Equal(expected, error.StatusCode);
    }

    [Fact]
    public async Task DetectTissue_AbsurdMppOverride_InvalidArgumentNamingTheField()
    {
        RpcException error = await FailsAsync(() => Client.DetectTissueAsync(new DetectTissueRequest { Path = Cmu, MppOverride = 1e-9 }).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("mpp", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetSlideInfo_100KilobytePath_MessageTruncatedNotAMetadataError()
    {
        string path = new string('a', 100_000) + ".svs";

        RpcException error = await FailsAsync(() => Client.GetSlideInfoAsync(new GetSlideInfoRequest { Path = path }).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.InRange(error.Status.Detail.Length, 1, 1024);
    }

    [Theory]
    [InlineData(1e-6, 0, 256, StatusCode.InvalidArgument, "at most 16x")]
    [InlineData(0, 1e9, 256, StatusCode.InvalidArgument, "at most 16x")]
    [InlineData(0.0624, 0, 1, StatusCode.ResourceExhausted, "the limit is 8388608")]
    public async Task StreamTiles_GridThatWouldExhaustTheServer_RefusedAtOnceAndTheServerStillAnswers(double targetMpp, double magnification, int tileSize, StatusCode status, string message)
    {
        var request = new StreamTilesRequest { Path = Cmu, TileSize = tileSize, MinTissueFraction = 0 };
        if (targetMpp > 0)
        {
            request.TargetMpp = targetMpp;
        }
        else
        {
            request.Magnification = magnification;
        }

        using AsyncServerStreamingCall<StreamTilesResponse> call = Client.StreamTiles(request, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10)));

        RpcException error = await FailsAsync(async () => await call.ResponseStream.MoveNext(CancellationToken.None));
        GetSlideInfoResponse info = await Client.GetSlideInfoAsync(new GetSlideInfoRequest { Path = Cmu }, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(5)));

        Assert.Equal(status, error.StatusCode);
        Assert.Contains(message, error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(2220, info.Width);
    }

    [Theory]
    [InlineData(0.25, true)]
    [InlineData(0.5, false)]
    public async Task StreamTiles_TargetFinerThanTheSlide_GridCarriesTheWarning(double targetMpp, bool warned)
    {
        using AsyncServerStreamingCall<StreamTilesResponse> call = Client.StreamTiles(new StreamTilesRequest { Path = Cmu, TargetMpp = targetMpp, TileSize = 256 });

        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        TileGridInfo grid = call.ResponseStream.Current.Grid;

        Assert.Equal(warned, grid.ResolutionWarning.Contains("is finer than the slide's 0.499 µm/px", StringComparison.Ordinal));
        Assert.Equal(warned, grid.ResolutionWarning.Length > 0);
    }

    [Theory]
    [InlineData(0, 0, 0, 256, 256)]
    [InlineData(2100, 2900, 0, 200, 100)] // past the edges: transparent there
    public async Task ReadRegion_RawAndPng_PixelsIdenticalToOpenSlidePython(long x, long y, int level, int width, int height)
    {
        byte[] expected = (await ExternalProcess.ReferencePixelsAsync(TestData.Path("slides", Cmu), $"region:{x},{y},{level},{width},{height}")).Pixels[0];
        var request = new ReadRegionRequest { Path = Cmu, X = x, Y = y, Level = level, Width = width, Height = height };

        request.Encoding = new ImageEncoding { Format = ImageFormat.Raw };
        ReadRegionResponse raw = await Client.ReadRegionAsync(request);
        request.Encoding = new ImageEncoding { Format = ImageFormat.Png };
        ReadRegionResponse png = await Client.ReadRegionAsync(request);

        Assert.Equal((width, height, 4), (raw.Image.Width, raw.Image.Height, raw.Image.Channels));
        Assert.Equal(expected, raw.Image.Data.ToByteArray());
        Assert.Equal(expected, ImageCodec.Decode(png.Image.Data.Span).Pixels);
    }

    [Fact]
    public async Task ReadRegion_LargerThanAMessage_ResourceExhaustedSayingUseTiles()
    {
        RpcException error = await FailsAsync(() => Client.ReadRegionAsync(new ReadRegionRequest { Path = Cmu, Width = 2000, Height = 2000 }).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Contains("StreamTiles", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadRegion_LevelPastTheEnd_OutOfRange()
    {
        RpcException error = await FailsAsync(() => Client.ReadRegionAsync(new ReadRegionRequest { Path = Cmu, Level = 3, Width = 10, Height = 10 }).ResponseAsync);

        Assert.Equal(StatusCode.OutOfRange, error.StatusCode);
        Assert.Contains("levels 0..0", error.Status.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("broken.svs")]
    [InlineData("unopenable.tiff")]
    public async Task GetSlideInfo_FileOpenSlideCannotOpen_InvalidArgumentWithOpenSlidesReasonAndServerStillServes(string file)
    {
        using JsonDocument reference = JsonDocument.Parse(await ExternalProcess.RunReferenceScriptAsync("openslide_metadata.py", TestData.Path("slides", file)));
        string reason = reference.RootElement.GetProperty("error").GetString()!;

        RpcException error = await FailsAsync(() => Client.GetSlideInfoAsync(new GetSlideInfoRequest { Path = file }).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains(reason, error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(2220, (await Client.GetSlideInfoAsync(new GetSlideInfoRequest { Path = Cmu })).Width);
    }

    [Fact]
    public async Task ReadRegion_CorruptTile_DataLossEveryTimeAndServerStillServes()
    {
        var request = new ReadRegionRequest { Path = "unreadable.svs", Width = 16, Height = 16 };

        RpcException first = await FailsAsync(() => Client.ReadRegionAsync(request).ResponseAsync);
        GetSlideInfoResponse info = await Client.GetSlideInfoAsync(new GetSlideInfoRequest { Path = "unreadable.svs" }); // reopened: metadata still readable
        RpcException second = await FailsAsync(() => Client.ReadRegionAsync(request).ResponseAsync);
        RpcException deepZoom = await FailsAsync(() => Client.GetDeepZoomTileAsync(new GetDeepZoomTileRequest { Path = "unreadable.svs", Level = 0 }).ResponseAsync);

        Assert.All(new[] { first, second, deepZoom }, e => Assert.Equal(StatusCode.DataLoss, e.StatusCode));
        Assert.Contains("Bogus marker length", first.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(16, info.Width);
        Assert.Equal(256, (await Client.ReadRegionAsync(new ReadRegionRequest { Path = Cmu, Width = 256, Height = 256 })).Image.Width);
    }

    [Theory]
    [InlineData("../SHA256SUMS")]
    [InlineData("../../../../../../etc/hostname")]
    [InlineData("/etc/hostname")]
    [InlineData("escape.svs")]         // a symlink in a root pointing outside every root
    [InlineData("etc-dir/hostname")]   // a symlinked folder leaving the roots
    public async Task GetSlideInfo_PathOutsideTheRoots_PermissionDenied(string path)
    {
        RpcException error = await FailsAsync(() => Client.GetSlideInfoAsync(new GetSlideInfoRequest { Path = path }).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Contains("--slide-root", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetSlideInfo_MissingFileAndEmptyPath_NotFoundAndInvalidArgument()
    {
        RpcException missing = await FailsAsync(() => Client.GetSlideInfoAsync(new GetSlideInfoRequest { Path = "no-such-slide.svs" }).ResponseAsync);
        RpcException empty = await FailsAsync(() => Client.GetSlideInfoAsync(new GetSlideInfoRequest()).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        Assert.Contains("no-such-slide.svs", missing.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, empty.StatusCode);
    }

    [Fact]
    public async Task GetSlideInfo_SymlinkToASlideInAnotherRoot_Served()
    {
        GetSlideInfoResponse info = await Client.GetSlideInfoAsync(new GetSlideInfoRequest { Path = "cmu-link.svs" });

        Assert.Equal(2220, info.Width);
        Assert.EndsWith(Cmu, info.Path, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetThumbnail_Cmu_SizeOfOpenSlidePythonsAndCloseInPixels()
    {
        (byte[][] pixels, string sizes) = await ExternalProcess.ReferencePixelsAsync(TestData.Path("slides", Cmu), "thumbnail:300");
        int[] size = sizes.Split(' ', StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        byte[] expected = pixels[0];

        GetThumbnailResponse thumbnail = await Client.GetThumbnailAsync(new GetThumbnailRequest { Path = Cmu, MaxSize = 300, Encoding = new ImageEncoding { Format = ImageFormat.Raw } });

        Assert.Equal((size[0], size[1], 3), (thumbnail.Image.Width, thumbnail.Image.Height, thumbnail.Image.Channels));
        byte[] ours = thumbnail.Image.Data.ToByteArray();
        double meanAbsoluteError = Enumerable.Range(0, ours.Length).Average(i => Math.Abs(ours[i] - expected[(i / 3 * 4) + (i % 3)]));
        Assert.InRange(meanAbsoluteError, 0, 4.0); // PIL's and libvips' Lanczos differ slightly
    }

    [Fact]
    public async Task GetAssociatedImage_Label_JpegOfTheRightSize()
    {
        GetAssociatedImageResponse label = await Client.GetAssociatedImageAsync(new GetAssociatedImageRequest { Path = Cmu, Name = "label" });
        RpcException unknown = await FailsAsync(() => Client.GetAssociatedImageAsync(new GetAssociatedImageRequest { Path = Cmu, Name = "nope" }).ResponseAsync);

        Raster decoded = ImageCodec.Decode(label.Image.Data.Span);
        Assert.Equal((label.Image.Width, label.Image.Height, 3), (decoded.Width, decoded.Height, decoded.Bands));
        Assert.Equal(ImageFormat.Jpeg, label.Image.Format);
        Assert.Equal(StatusCode.InvalidArgument, unknown.StatusCode);
        Assert.Contains("macro", unknown.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DetectTissue_Cmu_MaskPngAndQuPathGeoJson()
    {
        DetectTissueResponse tissue = await Client.DetectTissueAsync(new DetectTissueRequest { Path = Cmu });

        Raster mask = ImageCodec.Decode(tissue.Mask.Data.Span);
        Assert.Equal((tissue.Mask.Width, tissue.Mask.Height, 1), (mask.Width, mask.Height, mask.Bands));
        Assert.Equal(tissue.TissueFraction, mask.Pixels.Count(p => p == 255) / (double)mask.Pixels.Length, 9);
        Assert.InRange(tissue.TissueFraction, 0.05, 0.95);
        using JsonDocument geojson = JsonDocument.Parse(tissue.Geojson);
        Assert.Equal("FeatureCollection", geojson.RootElement.GetProperty("type").GetString());
        JsonElement[] features = geojson.RootElement.GetProperty("features").EnumerateArray().ToArray();
        Assert.Equal(tissue.PolygonCount, features.Length);
        Assert.All(features, f =>
        {
            JsonElement properties = f.GetProperty("properties");
            Assert.Equal("annotation", properties.GetProperty("objectType").GetString());
            Assert.Equal("Tissue", properties.GetProperty("classification").GetProperty("name").GetString());
            Assert.Equal(3, properties.GetProperty("classification").GetProperty("color").GetArrayLength());
            JsonElement ring = f.GetProperty("geometry").GetProperty("coordinates")[0];
            Assert.Equal(ring[0].ToString(), ring[ring.GetArrayLength() - 1].ToString());
            Assert.All(ring.EnumerateArray(), p => Assert.True(p[0].GetDouble() is >= 0 and <= 2220 && p[1].GetDouble() is >= 0 and <= 2967));
        });
    }

    [Fact]
    public async Task StreamTiles_LargeSlideAtHalfMicron_GridThenExactlyTheBlobTilesInOrder()
    {
        using AsyncServerStreamingCall<StreamTilesResponse> call = Client.StreamTiles(new StreamTilesRequest { Path = server.LargeSlide, TargetMpp = 0.5 });
        var messages = new List<StreamTilesResponse>();
        await foreach (StreamTilesResponse message in call.ResponseStream.ReadAllAsync())
        {
            messages.Add(message);
        }

        TileGridInfo grid = messages[0].Grid;
        Assert.Equal((58, 58, 1, 344L), (grid.Columns, grid.Rows, grid.ReadLevel, grid.TileCount));
        Assert.Equal(MppSource.TiffResolution, grid.SlideResolution.Source);
        SlideTile[] tiles = messages.Skip(1).Select(m => m.Tile).ToArray();
        Assert.Equal(344, tiles.Length);
        Assert.Equal(Enumerable.Range(1, 344).Select(i => (long)i), messages.Skip(1).Select(m => m.TilesSent));
        Assert.All(messages, m => Assert.Equal(344, m.TilesTotal));
        Assert.Equal(tiles.OrderBy(t => t.Row).ThenBy(t => t.Column).Select(t => (t.Column, t.Row)), tiles.Select(t => (t.Column, t.Row)));
        Assert.All(tiles, t => Assert.True(
            SyntheticSlides.LargeBlobs.Any(b => t.Level0.X >= b.X && t.Level0.Y >= b.Y && t.Level0.X + t.Level0.Width <= b.X + b.Width && t.Level0.Y + t.Level0.Height <= b.Y + b.Height),
            $"tile {t.Column},{t.Row} is not inside a blob"));
        Raster first = ImageCodec.Decode(tiles[0].Image.Data.Span);
        Assert.Equal((256, 256, 3), (first.Width, first.Height, first.Bands));
    }

    [Fact]
    public async Task StreamTiles_SlowClient_ServerReadsOnlyAWindowAhead()
    {
        // 3364 raw tiles of 192 KiB (630 MiB) if the server did not wait for the client.
        long before = server.Service.TilesRead;
        using (AsyncServerStreamingCall<StreamTilesResponse> call = Client.StreamTiles(new StreamTilesRequest
        {
            Path = server.LargeSlide,
            TargetMpp = 0.5,
            MinTissueFraction = 0,
            Encoding = new ImageEncoding { Format = ImageFormat.Raw },
        }))
        {
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None)); // the grid
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None)); // tile 1
            Assert.Equal(3364, call.ResponseStream.Current.TilesTotal);
            await Task.Delay(TimeSpan.FromSeconds(2));

            long readWhileWaiting = server.Service.TilesRead - before;
            // HTTP/2 windows (about 6 MiB) hold ~32 raw tiles, plus the reader's look-ahead.
            Assert.InRange(readWhileWaiting, 2, 100);
        }

        Assert.Equal(2220, (await Client.GetSlideInfoAsync(new GetSlideInfoRequest { Path = Cmu })).Width);
    }

    [Fact]
    public async Task DeepZoom_Cmu_InfoAndTilesAsTheEngineComputes()
    {
        GetDeepZoomInfoResponse info = await Client.GetDeepZoomInfoAsync(new GetDeepZoomInfoRequest { Path = Cmu });
        GetDeepZoomTileResponse tile = await Client.GetDeepZoomTileAsync(new GetDeepZoomTileRequest { Path = Cmu, Level = 12, Column = 8, Row = 11, Encoding = new ImageEncoding { Format = ImageFormat.Png } });
        RpcException past = await FailsAsync(() => Client.GetDeepZoomTileAsync(new GetDeepZoomTileRequest { Path = Cmu, Level = 12, Column = 9 }).ResponseAsync);

        XElement dzi = XElement.Parse(info.Dzi);
        Assert.Equal("254", dzi.Attribute("TileSize")!.Value);
        Assert.Equal("2220", dzi.Elements().Single().Attribute("Width")!.Value);
        Assert.Equal(13, info.Levels.Count);
        Assert.Equal((9L, 12L), (info.Levels[12].Columns, info.Levels[12].Rows));
        // Bottom-right tile: 2220 - 8*254 = 188 wide plus the left overlap; 2967 - 11*254 = 173 high plus the top one.
        Assert.Equal((189, 174), (tile.Image.Width, tile.Image.Height));
        Assert.Equal(StatusCode.OutOfRange, past.StatusCode);
    }
}
