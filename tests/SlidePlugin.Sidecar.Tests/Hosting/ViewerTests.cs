using System.Net;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Playwright;
using Serilog;
using SlidePlugin.Client;
using AnalysisExports = SlidePlugin.Engine.Analysis.AnalysisExports;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.LabelMasks;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Engine.Tensors;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Cli;
using SlidePlugin.Sidecar.Grpc;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Sidecar.Services;
using SlidePlugin.Tests;
using Xunit.Abstractions;

namespace SlidePlugin.Sidecar.Tests.Hosting;

/// <summary>
/// The browser viewer served at / of the --web-listen endpoint, driven in Debian's headless chromium through Playwright:
/// the slide list, the slide over Deep Zoom tiles, an analysis painted as it streams, Cancel, and the token prompt.
/// With SLIDEPLUGIN_VIEWER_SCREENSHOTS set to a folder, each state is saved there (docs/viewer holds the README's).
/// </summary>
public sealed class ViewerTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Cmu = "CMU-1-Small-Region.svs";
    private const string Token = "v13wer-t0ken";
    private const string Chromium = "/usr/bin/chromium";
    private static readonly TimeSpan Analysis = TimeSpan.FromMinutes(3);

    private readonly string _work = Directory.CreateTempSubdirectory("slideplugin-viewer").FullName;
    private readonly List<IDisposable> _services = [];
    private readonly List<SidecarServer> _servers = [];
    private readonly List<string> _browserErrors = [];
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    public async Task InitializeAsync()
    {
        // Under CI a missing browser fails the test (install-deps.sh --test installs it); nothing is skipped.
        if (!File.Exists(Chromium))
        {
            throw new InvalidOperationException($"{Chromium} is missing: the viewer's tests drive Debian's chromium (packaging/install-deps.sh --test installs it).");
        }

        // Two cores shared with the rest of the suite: Playwright's 5 s default is short for a first slide open.
        Assertions.SetDefaultExpectTimeout(30_000);
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        foreach (SidecarServer server in _servers)
        {
            await server.StopAsync();
            await server.DisposeAsync();
        }

        _services.ForEach(s => s.Dispose());
        Directory.Delete(_work, recursive: true);
    }

    [Fact]
    public async Task Viewer_ServedAtTheWebRoot_EmbeddedPageAndScriptsUnderOneMegabyteAndNotOnTheGrpcEndpoint()
    {
        SidecarServer server = await StartAsync("files", token: Token);
        using var web = new HttpClient { BaseAddress = new Uri(server.WebAddress!) };
        using var grpc = new HttpClient { BaseAddress = new Uri(server.Addresses.Single()), DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        using HttpResponseMessage page = await web.GetAsync("/");
        using HttpResponseMessage script = await web.GetAsync("/viewer/openseadragon/openseadragon.min.js");
        string licences = await web.GetStringAsync("/viewer/THIRD-PARTY.txt");
        string osdLicence = await web.GetStringAsync("/viewer/licenses/openseadragon.txt");
        using HttpResponseMessage missing = await web.GetAsync("/viewer/nope.js");
        using HttpResponseMessage onGrpc = await grpc.GetAsync("/");

        // The files need no token (the page asks for it); the calls do.
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("viewer/viewer.js", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
        Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        Assert.Contains("OpenSeadragon 6.1.1", licences, StringComparison.Ordinal);
        Assert.Contains("Redistribution and use in source and binary forms", osdLicence, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, onGrpc.StatusCode);
        long total = ViewerFiles.Files.Values.Sum(resource => typeof(ViewerFiles).Assembly.GetManifestResourceStream(resource)!.Length);
        Assert.InRange(total, 100_000, 1_000_000);
    }

    [Fact]
    public async Task Viewer_AnalyzeCmu_PaintedTilesEqualStreamedAndScreenPixelsCarryPercentileColours()
    {
        SidecarServer server = await StartAsync("analyze", token: null);
        IPage page = await OpenPageAsync(server);
        await WaitForStateAsync(page, "slides");
        ILocator cmu = page.Locator($"li.slide[data-path='{Cmu}']");
        await Assertions.Expect(cmu).ToHaveAttributeAsync("data-vendor", "aperio");
        await Assertions.Expect(cmu.Locator(".meta")).ToContainTextAsync("2,220 × 2,967 px · 0.499 µm/px");
        await Assertions.Expect(page.Locator("li.slide[data-path='unopenable.tiff'] .reason")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#tissue-toggle")).ToBeHiddenAsync();
        await page.WaitForFunctionAsync($"() => document.querySelector(\"li.slide[data-path='{Cmu}'] img\").naturalWidth > 0");
        await ScreenshotAsync(page, "1-slides");

        await cmu.ClickAsync();
        await WaitForStateAsync(page, "open");
        await page.WaitForFunctionAsync("() => document.body.dataset.firstTileMs !== undefined");
        output.WriteLine($"first Deep Zoom tile drawn {await DataAsync(page, "firstTileMs")} ms after the click on the slide");
        await page.WaitForFunctionAsync("() => !document.getElementById('tissue-toggle').hidden");
        await ScreenshotAsync(page, "2-slide-with-tissue");

        await page.ClickAsync("#analyze");
        await WaitForStateAsync(page, "done", Analysis);
        await ScreenshotAsync(page, "4-heatmap");

        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());
        var analyses = new AnalysisService.AnalysisServiceClient(channel);
        string key = await DataAsync(page, "analysisKey");
        AnalysisResult stored = (await analyses.GetAnalysisAsync(new GetAnalysisRequest { Key = key, IncludeTiles = true })).Result;
        int tileCount = stored.Header.TileCount;
        Assert.True(tileCount > 100, $"{tileCount} tiles");
        Assert.Equal(tileCount, int.Parse(await DataAsync(page, "tileCount")));
        Assert.Equal(tileCount, int.Parse(await DataAsync(page, "streamedTiles"))); // a fresh run: every tile came as progress
        Assert.Equal(tileCount, int.Parse(await DataAsync(page, "paintedTiles")));
        Assert.Equal(tileCount, int.Parse(await DataAsync(page, "finalTiles")));

        // What the user sees: at full opacity without the tissue outline, the screen at a tile's centre is the jet colour of
        // its attention percentile (the heatmap export's colours). Tiles under the page's controls are not sampled.
        await page.EvalOnSelectorAsync("#opacity", "e => { e.value = 1; e.dispatchEvent(new Event('input')); }");
        await page.UncheckAsync("#tissue");
        await page.EvaluateAsync("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))");
        Raster screen = ImageCodec.Decode(await page.ScreenshotAsync());
        TileResult[] sampled = [.. stored.Tiles.OrderBy(t => t.AttentionPercentile)];
        sampled = [.. new[] { 0, sampled.Length / 4, sampled.Length / 2, 3 * sampled.Length / 4, sampled.Length - 1 }
            .SelectMany(i => sampled.Skip(i).Take(40))];
        int checkedTiles = 0;
        foreach (TileResult tile in sampled)
        {
            (int x, int y)? centre = await VisibleCentreAsync(page, tile);
            if (centre is not { } at)
            {
                continue;
            }

            (byte r, byte g, byte b) = AnalysisExports.Jet(tile.AttentionPercentile / 100);
            ReadOnlySpan<byte> pixel = screen[at.x, at.y];
            Assert.True(Math.Abs(pixel[0] - r) <= 2 && Math.Abs(pixel[1] - g) <= 2 && Math.Abs(pixel[2] - b) <= 2,
                $"tile {tile.Index} at percentile {tile.AttentionPercentile:F1}: screen ({at.x}, {at.y}) is {pixel[0]},{pixel[1]},{pixel[2]}, expected {r},{g},{b}");
            checkedTiles++;
        }

        Assert.True(checkedTiles >= 20, $"only {checkedTiles} sampled tiles were visible");

        // A click on a tile shows its attention, percentile and probabilities, as stored.
        TileResult top = null!;
        (int x, int y)? topCentre = null;
        foreach (TileResult candidate in stored.Tiles.OrderByDescending(t => t.Attention))
        {
            if ((topCentre = await VisibleCentreAsync(page, candidate)) is not null)
            {
                top = candidate;
                break;
            }
        }

        await page.Mouse.ClickAsync(topCentre!.Value.x, topCentre.Value.y);
        await Assertions.Expect(page.Locator("#tile-details")).ToHaveAttributeAsync("data-index", top.Index.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(top.AttentionPercentile.ToString("F1", System.Globalization.CultureInfo.InvariantCulture), await page.TextContentAsync("#tile-values dd[data-name='Percentile']"));
        Assert.Equal(top.Probabilities[1].ToString("F4", System.Globalization.CultureInfo.InvariantCulture), await page.TextContentAsync("#tile-values dd[data-name='P(malignant)']"));
        await page.EvalOnSelectorAsync("#opacity", "e => { e.value = 0.5; e.dispatchEvent(new Event('input')); }");
        await page.CheckAsync("#tissue");
        await ScreenshotAsync(page, "5-tile-details");

        // The CSV export, fetched with the page's credentials and saved as a download: a row a tile.
        IDownload csv = await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("#exports button[data-format='csv']"));
        Assert.Equal("CMU-1-Small-Region.csv", csv.SuggestedFilename);
        Assert.Equal(tileCount + 1, (await File.ReadAllLinesAsync(await csv.PathAsync())).Count(line => line.Length > 0));

        // Analyze again: the stored analysis repaints at once, every tile final, none streamed as progress.
        await page.ClickAsync("#analyze");
        await WaitForStateAsync(page, "done");
        Assert.Equal("0", await DataAsync(page, "streamedTiles"));
        Assert.Equal(tileCount, int.Parse(await DataAsync(page, "finalTiles")));
        Assert.Equal(tileCount, int.Parse(await DataAsync(page, "paintedTiles")));
        await Assertions.Expect(page.Locator("#prediction")).ToContainTextAsync("from the store");

        // Opened again (server and browser warm): the budget is the first tile within 300 ms; logged, not asserted, as
        // the shared test machine's load decides it.
        await page.ClickAsync("li.slide[data-path='small.svs']");
        await page.WaitForFunctionAsync("() => document.body.dataset.firstTileMs !== undefined");
        await page.ClickAsync($"li.slide[data-path='{Cmu}']");
        await page.WaitForFunctionAsync("() => document.body.dataset.firstTileMs !== undefined");
        output.WriteLine($"opened again: first tile drawn {await DataAsync(page, "firstTileMs")} ms after the click");
        Assert.Empty(_browserErrors);
    }

    [Fact]
    public async Task Viewer_CancelWhileStreaming_NothingPaintedAfterwards()
    {
        SidecarServer server = await StartAsync("cancel", token: null);
        IPage page = await OpenPageAsync(server);
        await WaitForStateAsync(page, "slides");
        await page.ClickAsync($"li.slide[data-path='{Cmu}']");
        await WaitForStateAsync(page, "open");
        // A slow network keeps the stream going long after the first batch, however fast the server scores.
        ICDPSession cdp = await page.Context.NewCDPSessionAsync(page);
        await cdp.SendAsync("Network.enable");
        await ThrottleAsync(cdp, bytesPerSecond: 16 * 1024);

        await page.ClickAsync("#analyze");
        await page.WaitForFunctionAsync("() => Number(document.body.dataset.paintedTiles) > 0", null, new() { Timeout = (float)Analysis.TotalMilliseconds });
        await ScreenshotAsync(page, "3-streaming");
        await page.ClickAsync("#cancel");
        await WaitForStateAsync(page, "cancelled");
        int painted = int.Parse(await DataAsync(page, "paintedTiles"));
        int tileCount = int.Parse(await DataAsync(page, "tileCount"));
        await ThrottleAsync(cdp, bytesPerSecond: -1);

        // The same analysis to its end over gRPC: every message the page would have had if it were still reading.
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());
        AnalysisResult result = await new AnalysisService.AnalysisServiceClient(channel).AnalyzeSlideToResultAsync(new AnalyzeSlideRequest { Path = Cmu });
        await page.EvaluateAsync("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))");

        Assert.Equal(tileCount, result.Header.TileCount);
        Assert.InRange(painted, 1, tileCount - 1);
        Assert.Equal(painted, int.Parse(await DataAsync(page, "paintedTiles")));
        Assert.Equal("0", await DataAsync(page, "finalTiles"));
        Assert.Equal("cancelled", await DataAsync(page, "state"));
        Assert.True(await page.IsEnabledAsync("#analyze"));
        Assert.False(await page.IsVisibleAsync("#exports")); // no export of an unfinished analysis
        await ScreenshotAsync(page, "6-cancelled");
    }

    [Fact]
    public async Task Viewer_WithToken_AsksForItAndAWrongOneGetsAClearMessage()
    {
        SidecarServer server = await StartAsync("token", Token);
        IPage page = await OpenPageAsync(server);
        await WaitForStateAsync(page, "token");
        await Assertions.Expect(page.Locator("#token-dialog")).ToBeVisibleAsync();
        await ScreenshotAsync(page, "7-token");

        await page.FillAsync("#token", "not-the-token");
        await page.ClickAsync("#token-submit");
        await WaitForStateAsync(page, "token-refused");
        await Assertions.Expect(page.Locator("#token-message")).ToContainTextAsync("The sidecar refused this token (HTTP 401");
        await ScreenshotAsync(page, "8-token-refused");

        await page.FillAsync("#token", Token);
        await page.ClickAsync("#token-submit");
        await WaitForStateAsync(page, "slides");
        await Assertions.Expect(page.Locator("#token-dialog")).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator($"li.slide[data-path='{Cmu}']")).ToHaveAttributeAsync("data-vendor", "aperio");
        Assert.Equal(Token, await page.EvaluateAsync<string>("() => sessionStorage.getItem('slideplugin.token')"));
        // Tiles need the token too: the slide opens and paints over them.
        await page.ClickAsync($"li.slide[data-path='{Cmu}']");
        await page.WaitForFunctionAsync("() => document.body.dataset.firstTileMs !== undefined");
    }

    [Fact]
    public async Task Viewer_SegmentTheVisibleRegion_ScreenShowsTheCardsClassColoursWhereTheServersLabelMapSaysThatClass()
    {
        // A seeded three-class FCN at 2 µm/px under a model root, as SegmentationServiceTests makes it; ListModels offers it.
        // Its input is stretched (std 0.03 around 0.8) so that the untrained net tells stain from glass: with seed 11 each
        // class wins a fifth to a half of the region below (background 26%, tumor 21%, stroma 54%).
        string models = Directory.CreateDirectory(Path.Combine(_work, "models")).FullName;
        string fcn = Path.Combine(models, "fcn.safetensors");
        SegmentationCheckpoint.Save(fcn, new FullyConvolutionalNet(new FcnSpec { Channels = 3, Classes = 3, Widths = [8, 16, 16] }, new TensorRandom(11)), new SegmentationCard
        {
            Name = "test-fcn",
            Classes = [.. SyntheticShapes.Table().Classes.Select(SegmentationClass.Of)],
            Mpp = 2.0,
            InputMean = [0.8f],
            InputStd = [0.03f],
            ImageLevelThreshold = null,
        });
        SidecarServer server = await StartAsync("segment", token: null, modelRoot: models);
        IPage page = await OpenPageAsync(server);
        await WaitForStateAsync(page, "slides");
        await page.ClickAsync($"li.slide[data-path='{Cmu}']");
        await WaitForStateAsync(page, "open");
        await Assertions.Expect(page.Locator("#seg-model")).ToHaveValueAsync(fcn);

        // Zoomed onto part of the slide: what is in view is segmented, not the whole slide.
        await page.EvaluateAsync("() => { const v = window.slidePlugin.viewer; v.viewport.fitBounds(v.viewport.imageToViewportRectangle(400, 600, 1200, 1000), true); }");
        await page.UncheckAsync("#tissue");
        await page.WaitForFunctionAsync("() => window.slidePlugin.viewer.world.getItemAt(0).getFullyLoaded()");
        await NextFramesAsync(page);
        Raster before = ImageCodec.Decode(await page.ScreenshotAsync());
        await page.ClickAsync("#segment");
        await page.WaitForFunctionAsync("() => ['done', 'error'].includes(document.body.dataset.segmentation)", null, new() { Timeout = (float)Analysis.TotalMilliseconds });
        Assert.Equal("done", await DataAsync(page, "segmentation"));
        await page.EvalOnSelectorAsync("#seg-opacity", "e => { e.value = 1; e.dispatchEvent(new Event('input')); }");
        await NextFramesAsync(page);
        Raster screen = ImageCodec.Decode(await page.ScreenshotAsync());

        long[] region = [.. (await DataAsync(page, "segRegion")).Split(',').Select(long.Parse)];
        Assert.True(region[0] <= 400 && region[1] <= 600 && region[0] + region[2] >= 1600 && region[1] + region[3] >= 1600, string.Join(",", region));
        Assert.True(region[0] >= 0 && region[1] >= 0 && region[0] + region[2] <= 2220 && region[1] + region[3] <= 2967, string.Join(",", region));
        Assert.True(region[2] * region[3] < 2220L * 2967 / 2, $"the visible region {string.Join(",", region)} is most of the slide");

        // The server's label map of that region, over gRPC.
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());
        SegmentOutputs expected = await new SegmentationService.SegmentationServiceClient(channel).SegmentToOutputsAsync(new SegmentRequest
        {
            ModelPath = fcn,
            SlideRegion = new SlideRegion { Path = Cmu, Region = new Rect { X = region[0], Y = region[1], Width = region[2], Height = region[3] } },
        });
        SegmentHeader header = expected.Header;
        LabelMask labels = LabelPalette.Decode(expected.LabelPng, SyntheticShapes.Table(), "labels");
        Dictionary<uint, SegmentClass> byCode = header.Classes.ToDictionary(c => c.Code);

        // The legend: every class of the card with its colour, in map order.
        Assert.Equal(header.Classes.Select(c => (c.Name, c.Color)), (await page.Locator("#seg-legend li").EvaluateAllAsync<string[][]>("items => items.map(e => [e.dataset.name, e.dataset.color])")).Select(a => (a[0], a[1])));

        // Points inside a patch of one class (5 x 5 label pixels, clear of its edges): a class's colour on screen, the
        // background class left unpainted (the slide as before).
        var points = new List<(int X, int Y, SegmentClass Class)>();
        for (int y = 2; y < labels.Height - 2; y += 5)
        {
            for (int x = 2; x < labels.Width - 2; x += 5)
            {
                byte code = labels.Codes[(y * labels.Width) + x];
                bool uniform = true;
                for (int dy = -2; dy <= 2 && uniform; dy++)
                {
                    for (int dx = -2; dx <= 2 && uniform; dx++)
                    {
                        uniform = labels.Codes[((y + dy) * labels.Width) + x + dx] == code;
                    }
                }

                if (uniform)
                {
                    points.Add((x, y, byCode[code]));
                }
            }
        }

        (int X, int Y)?[] onPage = await VisiblePointsAsync(page, [.. points.Select(p => (header.Level0X + ((p.X + 0.5) * header.DownsampleX), header.Level0Y + ((p.Y + 0.5) * header.DownsampleY)))]);
        var checkedPerClass = new Dictionary<string, int>();
        for (int i = 0; i < points.Count; i++)
        {
            if (onPage[i] is not { } at)
            {
                continue;
            }

            SegmentClass c = points[i].Class;
            ReadOnlySpan<byte> pixel = screen[at.X, at.Y];
            (byte r, byte g, byte b) = c.Index == 0 ? (before[at.X, at.Y][0], before[at.X, at.Y][1], before[at.X, at.Y][2]) : Hex(c.Color);
            Assert.True(Math.Abs(pixel[0] - r) <= 2 && Math.Abs(pixel[1] - g) <= 2 && Math.Abs(pixel[2] - b) <= 2,
                $"label ({points[i].X}, {points[i].Y}) is {c.Name}: screen ({at.X}, {at.Y}) is {pixel[0]},{pixel[1]},{pixel[2]}, expected {r},{g},{b}");
            checkedPerClass[c.Name] = checkedPerClass.GetValueOrDefault(c.Name) + 1;
        }

        output.WriteLine($"points checked per class: {string.Join(", ", checkedPerClass.Select(kv => $"{kv.Key} {kv.Value}"))}");
        Assert.All(header.Classes, c => Assert.True(checkedPerClass.GetValueOrDefault(c.Name) >= 20, $"only {checkedPerClass.GetValueOrDefault(c.Name)} {c.Name} points on screen"));
        await page.EvalOnSelectorAsync("#seg-opacity", "e => { e.value = 0.6; e.dispatchEvent(new Event('input')); }");
        await ScreenshotAsync(page, "9-segmentation");
        Assert.Empty(_browserErrors);
    }

    [Fact]
    public async Task Viewer_TopTilesGallery_KCropsOfTheTopTilesAndAClickCentresTheViewOnThatTile()
    {
        SidecarServer server = await StartAsync("gallery", token: null);
        IPage page = await OpenPageAsync(server);
        await WaitForStateAsync(page, "slides");
        await page.ClickAsync($"li.slide[data-path='{Cmu}']");
        await WaitForStateAsync(page, "open");
        await page.ClickAsync("#analyze");
        await WaitForStateAsync(page, "done", Analysis);

        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());
        AnalysisResult stored = (await new AnalysisService.AnalysisServiceClient(channel).GetAnalysisAsync(new GetAnalysisRequest { Key = await DataAsync(page, "analysisKey"), IncludeTiles = true })).Result;
        TileResult[] top = [.. stored.Tiles.OrderByDescending(t => t.Attention).Take(8)];

        // k = 8 crops, the top tiles by attention in order, each read from the slide at the tile's size (CMU has one level).
        ILocator items = page.Locator("#top-tiles li");
        await Assertions.Expect(items).ToHaveCountAsync(top.Length);
        Assert.Equal(top.Select(t => t.Index.ToString(System.Globalization.CultureInfo.InvariantCulture)), await items.EvaluateAllAsync<string[]>("items => items.map(e => e.dataset.index)"));
        await page.WaitForFunctionAsync("() => [...document.querySelectorAll('#top-tiles img')].every(i => i.complete && i.naturalWidth > 0)");
        int[][] sizes = await page.Locator("#top-tiles img").EvaluateAllAsync<int[][]>("images => images.map(i => [i.naturalWidth, i.naturalHeight])");
        Assert.Equal(top.Select(t => ((int)t.Level0.Width, (int)t.Level0.Height)), sizes.Select(s => (s[0], s[1])));

        // A click on one moves the view's centre onto that tile, and shows the tile's details.
        foreach (int k in new[] { 3, 0 })
        {
            TileResult tile = top[k];
            await items.Nth(k).Locator("button").ClickAsync();
            await page.WaitForFunctionAsync("() => document.body.dataset.viewCentre !== undefined");
            double[] centre = [.. (await DataAsync(page, "viewCentre")).Split(',').Select(double.Parse)];
            Assert.True(centre[0] >= tile.Level0.X && centre[0] <= tile.Level0.X + tile.Level0.Width && centre[1] >= tile.Level0.Y && centre[1] <= tile.Level0.Y + tile.Level0.Height,
                $"the view's centre ({centre[0]}, {centre[1]}) is off tile {tile.Index} at {tile.Level0}");
            await Assertions.Expect(page.Locator("#tile-details")).ToHaveAttributeAsync("data-index", tile.Index.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        await ScreenshotAsync(page, "10-top-tiles");
        Assert.Empty(_browserErrors);
    }

    [Fact]
    public async Task Viewer_OpenSlideOnAFreshServer_TissueDetectionWaitsForTheFirstTileAndTheTimesAreLogged()
    {
        SidecarServer server = await StartAsync("first-tile", token: null);
        IPage page = await OpenPageAsync(server);
        await WaitForStateAsync(page, "slides");
        // What the user sees before the click: the list with its thumbnails.
        await page.WaitForFunctionAsync($"() => document.querySelector(\"li.slide[data-path='{Cmu}'] img\").naturalWidth > 0");
        await page.ClickAsync($"li.slide[data-path='{Cmu}']");
        await page.WaitForFunctionAsync("() => !document.getElementById('tissue-toggle').hidden");
        int firstTile = int.Parse(await DataAsync(page, "firstTileMs"));
        JsonElement calls = await page.EvaluateAsync<JsonElement>(
            @"() => {
                const opened = Number(document.body.dataset.openedAt);
                return performance.getEntriesByType('resource').filter((e) => e.startTime >= opened && e.name.includes('/v1/slides/'))
                    .map((e) => ({ call: e.name.replace(/^.*\/v1\//, '').replace(/path=[^&]*&?/, ''), start: Math.round(e.startTime - opened), end: Math.round(e.responseEnd - opened) }));
            }");
        output.WriteLine($"first Deep Zoom tile drawn {firstTile} ms after the click (loaded at {await DataAsync(page, "firstTileLoadedMs")} ms); " +
            string.Join("; ", calls.EnumerateArray().Take(8).Select(c => $"{c.GetProperty("call").GetString()}: {c.GetProperty("start")}-{c.GetProperty("end")} ms")));

        // Tissue detection reads the whole slide: it starts once the first tile is drawn, not alongside the tiles. The
        // 300 ms budget for that tile is logged, not asserted: on two shared cores this slide takes 450-650 ms (README).
        JsonElement tissue = calls.EnumerateArray().Single(c => c.GetProperty("call").GetString()!.StartsWith("slides/tissue", StringComparison.Ordinal));
        Assert.True(tissue.GetProperty("start").GetInt32() >= firstTile, $"tissue detection started {tissue.GetProperty("start")} ms after the click, before the first tile ({firstTile} ms)");
        Assert.Contains(calls.EnumerateArray(), c => c.GetProperty("call").GetString()!.StartsWith("slides/deepzoom/tile/image", StringComparison.Ordinal) && c.GetProperty("end").GetInt32() <= firstTile);
        Assert.Empty(_browserErrors);
    }

    [Fact]
    public async Task Viewer_AnalyzeALargeSlide_PaintedTilesKeepUpWithTheServersStream()
    {
        // 40,000² px at 0.25 µm/px (the issue's size), tissue in the large slide's three blobs scaled by 4/3: some 39,000
        // tiles of the bundled model, streamed for longer than the 15 s sampled.
        string large = SyntheticSlides.Generate(40000, 40000, [.. SyntheticSlides.LargeBlobs.Select(b => new Level0Rect(b.X * 4 / 3, b.Y * 4 / 3, b.Width * 4 / 3, b.Height * 4 / 3))]);
        SidecarServer server = await StartAsync("large", token: null, slideRoot: Path.GetDirectoryName(large));
        IPage page = await OpenPageAsync(server);
        await WaitForStateAsync(page, "slides");
        await page.ClickAsync($"li.slide[data-path='{Path.GetFileName(large)}']");
        await WaitForStateAsync(page, "open");
        await page.ClickAsync("#analyze");
        await page.WaitForFunctionAsync("() => Number(document.body.dataset.paintedTiles) > 0", null, new() { Timeout = (float)Analysis.TotalMilliseconds });

        // A gRPC watcher of the same analysis sees the server's messages as they are sent: what the page could have painted.
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());
        using var stop = new CancellationTokenSource();
        using AsyncServerStreamingCall<AnalyzeSlideResponse> watch = new AnalysisService.AnalysisServiceClient(channel)
            .AnalyzeSlide(new AnalyzeSlideRequest { Path = Path.GetFileName(large) }, cancellationToken: stop.Token);
        int sent = 0, largestBatch = 0, tileCount = 0;
        Task watching = Task.Run(async () =>
        {
            try
            {
                while (await watch.ResponseStream.MoveNext(stop.Token))
                {
                    AnalyzeSlideResponse message = watch.ResponseStream.Current;
                    tileCount = message.Header?.TileCount ?? tileCount;
                    if (message.Progress is { } progress)
                    {
                        largestBatch = Math.Max(largestBatch, progress.Tiles.Count);
                        Interlocked.Add(ref sent, progress.Tiles.Count);
                    }
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
            {
                // stopped below
            }
        });

        // Every 100 ms for 15 s (or to the end): tiles the server has sent minus tiles the page has painted. On an idle
        // machine the whole slide streams in a few seconds, so the samples must be close together to see it stream.
        var lags = new List<(int Sent, int Painted)>();
        for (int i = 0; i < 150; i++)
        {
            await Task.Delay(100);
            int sentNow = Volatile.Read(ref sent);
            int painted = int.Parse(await DataAsync(page, "paintedTiles"));
            lags.Add((sentNow, painted));
            if (await DataAsync(page, "state") != "streaming")
            {
                break;
            }
        }

        output.WriteLine($"{tileCount} tiles, batches up to {largestBatch}; sent/painted every 100 ms: {string.Join(" ", lags.Select(l => $"{l.Sent}/{l.Painted}"))}");
        if (await DataAsync(page, "state") == "streaming")
        {
            await page.ClickAsync("#cancel");
        }

        await stop.CancelAsync();
        await watching;

        Assert.True(lags.Count >= 5 && lags[^1].Painted > lags[0].Painted, "the analysis did not stream long enough to measure");
        Assert.InRange(largestBatch, 1, 10_000);
        // No growing backlog: at every sample the page is within two batches of the server.
        Assert.All(lags, l => Assert.True(l.Sent - l.Painted <= 2 * largestBatch, $"{l.Sent} tiles sent, {l.Painted} painted: a backlog of more than two batches of {largestBatch}"));
        Assert.Empty(_browserErrors);
    }

    private static (byte R, byte G, byte B) Hex(string color) =>
        (Convert.ToByte(color[1..3], 16), Convert.ToByte(color[3..5], 16), Convert.ToByte(color[5..7], 16));

    private static async Task NextFramesAsync(IPage page) => await page.EvaluateAsync("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))");

    /// <summary>The page positions of level-0 points, null where a point is off screen or under one of the page's controls.</summary>
    private static async Task<(int X, int Y)?[]> VisiblePointsAsync(IPage page, IReadOnlyList<(double X, double Y)> points)
    {
        JsonElement all = await page.EvaluateAsync<JsonElement>(
            @"points => {
                const main = document.getElementById('main').getBoundingClientRect();
                const covers = [...document.querySelectorAll('#main *')].map((e) => [e, e.getBoundingClientRect()])
                    .filter(([e, r]) => r.width > 0 && r.width < main.width / 2 && getComputedStyle(e).visibility !== 'hidden').map(([, r]) => r);
                return points.map(([x, y]) => {
                    const p = window.slidePlugin.imageToPage(x, y);
                    const inside = (r) => p.x >= r.left - 2 && p.x <= r.right + 2 && p.y >= r.top - 2 && p.y <= r.bottom + 2;
                    return { x: Math.floor(p.x), y: Math.floor(p.y), visible: inside(main) && !covers.some(inside) };
                });
            }",
            points.Select(p => new[] { p.X, p.Y }).ToArray());
        return [.. all.EnumerateArray().Select(at => at.GetProperty("visible").GetBoolean() ? ((int, int)?)(at.GetProperty("x").GetInt32(), at.GetProperty("y").GetInt32()) : null)];
    }

    private static Task<JsonElement?> ThrottleAsync(ICDPSession cdp, int bytesPerSecond) => cdp.SendAsync("Network.emulateNetworkConditions", new Dictionary<string, object>
    {
        ["offline"] = false,
        ["latency"] = 0,
        ["downloadThroughput"] = bytesPerSecond,
        ["uploadThroughput"] = -1,
    });

    /// <summary>The page position of the tile's centre, or null when it is off screen or under one of the page's controls.</summary>
    private static async Task<(int X, int Y)?> VisibleCentreAsync(IPage page, TileResult tile)
    {
        JsonElement at = await page.EvaluateAsync<JsonElement>(
            @"([x, y]) => {
                const p = window.slidePlugin.imageToPage(x, y);
                const main = document.getElementById('main').getBoundingClientRect();
                const inside = (r) => p.x >= r.left - 2 && p.x <= r.right + 2 && p.y >= r.top - 2 && p.y <= r.bottom + 2;
                // Anything drawn over the slide smaller than it (buttons, navigator, scale bar, toggles) hides what is below.
                const covered = [...document.querySelectorAll('#main *')].some((e) => {
                    const r = e.getBoundingClientRect();
                    return r.width > 0 && r.width < main.width / 2 && getComputedStyle(e).visibility !== 'hidden' && inside(r);
                });
                return { x: Math.floor(p.x), y: Math.floor(p.y), visible: inside(main) && !covered };
            }",
            new[] { tile.Level0.X + (tile.Level0.Width / 2.0), tile.Level0.Y + (tile.Level0.Height / 2.0) });
        return at.GetProperty("visible").GetBoolean() ? (at.GetProperty("x").GetInt32(), at.GetProperty("y").GetInt32()) : null;
    }

    private static async Task<string> DataAsync(IPage page, string name) =>
        await page.EvaluateAsync<string?>($"() => document.body.dataset.{name}") ?? throw new InvalidOperationException($"body has no data-{name}");

    private async Task WaitForStateAsync(IPage page, string state, TimeSpan? timeout = null)
    {
        try
        {
            await page.WaitForFunctionAsync($"s => document.body.dataset.state === s", state, new() { Timeout = (float)(timeout ?? TimeSpan.FromSeconds(30)).TotalMilliseconds });
        }
        catch (Exception e) when (e is TimeoutException or PlaywrightException)
        {
            string now = await page.EvaluateAsync<string>("() => document.body.dataset.state + ': ' + [...document.querySelectorAll('.message')].map(e => e.textContent).join(' | ')");
            throw new InvalidOperationException($"the viewer did not reach '{state}'; it is in {now}; browser errors: {string.Join("; ", _browserErrors)}", e);
        }
    }

    private async Task<IPage> OpenPageAsync(SidecarServer server)
    {
        IPage page = await _browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 }, Locale = "en-US" });
        page.PageError += (_, error) => _browserErrors.Add(error);
        page.Console += (_, message) =>
        {
            // Answers with an error status (a slide that cannot be opened, a refused token) are expected; script errors are not.
            if (message.Type == "error" && !message.Text.StartsWith("Failed to load resource", StringComparison.Ordinal))
            {
                _browserErrors.Add(message.Text);
            }
        };
        await page.GotoAsync(server.WebAddress + "/");
        return page;
    }

    private static async Task ScreenshotAsync(IPage page, string name)
    {
        if (Environment.GetEnvironmentVariable("SLIDEPLUGIN_VIEWER_SCREENSHOTS") is { Length: > 0 } folder)
        {
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(folder, $"{name}.jpg"), Type = ScreenshotType.Jpeg, Quality = 80 });
        }
    }

    private async Task<SidecarServer> StartAsync(string name, string? token, string? modelRoot = null, string? slideRoot = null)
    {
        var roots = new SlideRoots(slideRoot is null ? [TestData.Path("slides")] : [TestData.Path("slides"), slideRoot]);
        var slides = new SlideServiceImpl(roots);
        ModelRoots? models = modelRoot is null ? null : new ModelRoots([modelRoot]);
        var analyses = new AnalysisServiceImpl(roots, Path.Combine(_work, name), BundledModel.Path, models: models);
        var segmentation = new SegmentationServiceImpl(roots, models);
        _services.Add(slides);
        _services.Add(analyses);
        _services.Add(segmentation);
        SidecarServer server = SidecarServer.Create(
            new ServerSettings { Listen = "127.0.0.1:0", WebListen = "127.0.0.1:0", Grpc = new GrpcServerOptions { AuthToken = token } },
            new LoggerConfiguration().MinimumLevel.Warning().WriteTo.Console().CreateLogger(),
            registry =>
            {
                slides.BindTo(registry);
                analyses.BindTo(registry);
                segmentation.BindTo(registry);
            });
        _servers.Add(server);
        await server.StartAsync();
        return server;
    }
}
