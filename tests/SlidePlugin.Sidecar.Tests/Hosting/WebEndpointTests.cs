using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Serilog;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Cli;
using SlidePlugin.Sidecar.Grpc;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Sidecar.Services;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Hosting;

/// <summary>
/// The --web-listen endpoint: HTTP/JSON routes driven by a Python script with urllib only, gRPC-Web over HTTP/1.1,
/// CORS for the configured origin only, and the same token as gRPC.
/// </summary>
public sealed class WebEndpointTests : IAsyncLifetime
{
    private const string Cmu = "CMU-1-Small-Region.svs";
    private const string Origin = "http://viewer.example";
    private const string Token = "w3b-t0ken";

    private readonly string _work = Directory.CreateTempSubdirectory("slideplugin-web").FullName;
    private readonly List<IDisposable> _services = [];
    private SidecarServer _open = null!;
    private SidecarServer _guarded = null!;

    public async Task InitializeAsync()
    {
        _open = await StartAsync("open", token: null);
        _guarded = await StartAsync("guarded", Token);
    }

    public async Task DisposeAsync()
    {
        foreach (SidecarServer server in new[] { _open, _guarded })
        {
            await server.StopAsync();
            await server.DisposeAsync();
        }

        _services.ForEach(s => s.Dispose());
        Directory.Delete(_work, recursive: true);
    }

    [Fact]
    public async Task HttpJson_PythonUrllibAnalyzesCmu_SameResultAsGrpcAndFilesWithTheirMediaTypes()
    {
        ProcessResult run = await ExternalProcess.RunAsync(ExternalProcess.ReferencePython,
            [Path.Combine(TestData.RepositoryRoot, "tests", "interop", "http_json_client.py"), _open.WebAddress!, Cmu], timeout: TimeSpan.FromMinutes(3));
        Assert.True(run.ExitCode == 0, run.StandardError);
        using JsonDocument json = JsonDocument.Parse(run.StandardOutput);
        JsonElement seen = json.RootElement;

        using GrpcChannel channel = SlidePluginChannel.ForAddress(_open.Addresses.Single());
        AnalysisResult grpc = await new AnalysisService.AnalysisServiceClient(channel).AnalyzeSlideToResultAsync(new AnalyzeSlideRequest { Path = Cmu });

        Assert.Equal(2220, seen.GetProperty("width").GetInt32());
        Assert.Equal(0.499, seen.GetProperty("mpp_x").GetDouble(), 6);
        Assert.True(seen.GetProperty("progress_events").GetInt32() > 0);
        Assert.True(grpc.FromStore); // the HTTP run stored it: same key, same analysis
        Assert.Equal(grpc.Header.Key, seen.GetProperty("key").GetString());
        Assert.Equal(grpc.Header.TileCount, seen.GetProperty("tile_count").GetInt32());
        Assert.Equal(grpc.PredictedClassName, seen.GetProperty("predicted_class_name").GetString());
        Assert.Equal(grpc.Probabilities, seen.GetProperty("probabilities").EnumerateArray().Select(p => p.GetSingle()));
        Assert.Equal(grpc.Header.TileCount, seen.GetProperty("geojson_features").GetInt32());
        Assert.Equal(grpc.Header.TileCount, seen.GetProperty("csv_rows").GetInt32());
        Assert.Equal("application/geo+json", seen.GetProperty("geojson_type").GetString());
        Assert.Equal("text/csv", seen.GetProperty("csv_type").GetString());
        Assert.Equal(400, seen.GetProperty("bad_format").GetProperty("http").GetInt32());
        Assert.Equal((int)StatusCode.InvalidArgument, seen.GetProperty("bad_format").GetProperty("body").GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task HttpJson_RoutesAndOpenApi_AnswerWithStatusesOfTheConventions()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_open.WebAddress!) };

        using HttpResponseMessage deepZoom = await http.GetAsync($"/v1/slides/deepzoom?path={Cmu}");
        using HttpResponseMessage tile = await http.GetAsync($"/v1/slides/deepzoom/tile?path={Cmu}&level=8&column=0&row=0");
        using HttpResponseMessage thumbnail = await http.GetAsync($"/v1/slides/thumbnail?path={Cmu}&max_size=64");
        using HttpResponseMessage missing = await http.GetAsync("/v1/slides/info?path=nope.svs");
        using HttpResponseMessage outside = await http.GetAsync("/v1/slides/info?path=../../../etc/passwd");
        using JsonDocument openApi = JsonDocument.Parse(await http.GetStringAsync("/openapi.json"));
        using JsonDocument models = JsonDocument.Parse(await http.GetStringAsync("/v1/models"));
        using JsonDocument region = JsonDocument.Parse(await http.GetStringAsync($"/v1/slides/region?path={Cmu}&x=100&y=200&level=0&width=64&height=48"));

        Assert.Equal("ucsb-gated-amil", models.RootElement.GetProperty("models")[0].GetProperty("name").GetString());
        Assert.True(models.RootElement.GetProperty("models")[0].GetProperty("isDefault").GetBoolean());
        Assert.Contains("<Image", JsonDocument.Parse(await deepZoom.Content.ReadAsStringAsync()).RootElement.GetProperty("dzi").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, tile.StatusCode);
        Assert.Equal(64, JsonDocument.Parse(await thumbnail.Content.ReadAsStringAsync()).RootElement.GetProperty("image").GetProperty("height").GetInt32());
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, outside.StatusCode);
        Assert.Equal((64, 48), (region.RootElement.GetProperty("image").GetProperty("width").GetInt32(), region.RootElement.GetProperty("image").GetProperty("height").GetInt32()));
        string[] paths = [.. openApi.RootElement.GetProperty("paths").EnumerateObject().Select(p => p.Name)];
        Assert.Equal(
            ["/v1/analyses", "/v1/analyses/{key}", "/v1/analyses/{key}/export", "/v1/models", "/v1/segmentations", "/v1/slides", "/v1/slides/deepzoom", "/v1/slides/deepzoom/tile",
                "/v1/slides/deepzoom/tile/image", "/v1/slides/info", "/v1/slides/region", "/v1/slides/thumbnail", "/v1/slides/tissue"],
            paths.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task HttpJson_ListSlidesTileImageAndTissue_TheViewersRoutes()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_open.WebAddress!) };

        using JsonDocument list = JsonDocument.Parse(await http.GetStringAsync("/v1/slides"));
        using JsonDocument tileJson = JsonDocument.Parse(await http.GetStringAsync($"/v1/slides/deepzoom/tile?path={Cmu}&level=10&column=1&row=2"));
        using HttpResponseMessage tileImage = await http.GetAsync($"/v1/slides/deepzoom/tile/image?path={Cmu}&level=10&column=1&row=2");
        using HttpResponseMessage pngTile = await http.GetAsync($"/v1/slides/deepzoom/tile/image?path={Cmu}&level=10&column=1&row=2&encoding.format=IMAGE_FORMAT_PNG");
        using HttpResponseMessage rawTile = await http.GetAsync($"/v1/slides/deepzoom/tile/image?path={Cmu}&level=10&column=1&row=2&encoding.format=IMAGE_FORMAT_RAW");
        using JsonDocument tissue = JsonDocument.Parse(await http.GetStringAsync($"/v1/slides/tissue?path={Cmu}"));

        JsonElement[] slides = [.. list.RootElement.GetProperty("slides").EnumerateArray()];
        Assert.Contains(slides, s => s.GetProperty("path").GetString() == Cmu && s.GetProperty("sizeBytes").ToString() == "1938955");
        Assert.DoesNotContain(slides, s => s.GetProperty("path").GetString()!.EndsWith(".txt", StringComparison.Ordinal));
        Assert.Equal(slides.Select(s => s.GetProperty("path").GetString()).Order(StringComparer.Ordinal), slides.Select(s => s.GetProperty("path").GetString()));
        // The image route answers the bytes GetDeepZoomTile carries, with their media type.
        Assert.Equal("image/jpeg", tileImage.Content.Headers.ContentType?.MediaType);
        Assert.Equal(tileJson.RootElement.GetProperty("image").GetProperty("data").GetBytesFromBase64(), await tileImage.Content.ReadAsByteArrayAsync());
        Assert.Equal("image/png", pngTile.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.BadRequest, rawTile.StatusCode);
        Assert.True(tissue.RootElement.GetProperty("polygonCount").GetInt32() > 0);
    }

    [Fact]
    public async Task GrpcWeb_UnaryOverHttp11_MessageThenTrailerFrame()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_open.WebAddress!) };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/slideplugin.v1.SlideService/GetSlideInfo")
        {
            Version = HttpVersion.Version11,
            Content = new ByteArrayContent(Frame(0, new GetSlideInfoRequest { Path = Cmu }.ToByteArray())),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc-web+proto");
        request.Headers.Add("x-grpc-web", "1");

        using HttpResponseMessage response = await http.SendAsync(request);
        byte[] body = await response.Content.ReadAsByteArrayAsync();

        Assert.Equal(new Version(1, 1), response.Version);
        Assert.Equal(0, body[0]);
        int length = (int)BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(1));
        Assert.Equal(2220, GetSlideInfoResponse.Parser.ParseFrom(body, 5, length).Width);
        Assert.Equal(0x80, body[5 + length]); // the trailers travel in the body as a last frame
        string[] trailers = Encoding.ASCII.GetString(body, 10 + length, body.Length - 10 - length).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("grpc-status:0", trailers.Select(t => t.Replace(" ", "", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Cors_PreflightFromTheConfiguredOrigin_AllowedAndOthersNot()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_open.WebAddress!) };

        string? allowed = await PreflightAsync(http, Origin);
        string? other = await PreflightAsync(http, "http://elsewhere.example");

        Assert.Equal(Origin, allowed);
        Assert.Null(other);
    }

    [Fact]
    public async Task Token_WebRoutesAndGrpcWeb_RefusedWithoutItServedWithIt()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_guarded.WebAddress!) };
        using HttpResponseMessage without = await http.GetAsync($"/v1/slides/info?path={Cmu}");
        using var withToken = new HttpRequestMessage(HttpMethod.Get, $"/v1/slides/info?path={Cmu}");
        withToken.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        using HttpResponseMessage with = await http.SendAsync(withToken);

        Assert.Equal(HttpStatusCode.Unauthorized, without.StatusCode);
        Assert.Equal(HttpStatusCode.OK, with.StatusCode);
    }

    [Fact]
    public async Task GrpcWeb_HeadlessChromium_AnalyzesCmuAcrossOriginsWithTheStreamAndTrailers()
    {
        // The page comes from another origin (a listener of this test), which the server allows with --web-origin.
        int pagePort = FreePort();
        string pageOrigin = $"http://127.0.0.1:{pagePort}";
        SidecarServer server = await StartAsync("browser", token: null, origin: pageOrigin);
        using var pages = new HttpListener();
        pages.Prefixes.Add(pageOrigin + "/");
        pages.Start();
        var report = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        Task serving = ServePageAsync(pages, report);
        string url = $"{pageOrigin}/page.html?server={Uri.EscapeDataString(server.WebAddress!)}&slide={Cmu}&report={Uri.EscapeDataString(pageOrigin + "/report")}";
        string profile = Directory.CreateTempSubdirectory("slideplugin-chromium").FullName;
        var start = new System.Diagnostics.ProcessStartInfo("chromium") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string arg in new[] { "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", $"--user-data-dir={profile}", url })
        {
            start.ArgumentList.Add(arg);
        }

        using System.Diagnostics.Process chromium = System.Diagnostics.Process.Start(start)
            ?? throw new InvalidOperationException("chromium did not start (Debian package chromium; packaging/install-deps.sh --test installs it)");
        string seenJson;
        try
        {
            seenJson = await report.Task.WaitAsync(TimeSpan.FromSeconds(120));
        }
        finally
        {
            chromium.Kill(entireProcessTree: true);
            pages.Stop();
            await server.StopAsync();
            await server.DisposeAsync();
            Directory.Delete(profile, recursive: true);
        }

        await serving;
        using JsonDocument seen = JsonDocument.Parse(seenJson);
        JsonElement r = seen.RootElement;
        Assert.False(r.TryGetProperty("error", out JsonElement error), error.ToString());
        using GrpcChannel channel = SlidePluginChannel.ForAddress(_open.Addresses.Single());
        AnalysisResult expected = await new AnalysisService.AnalysisServiceClient(channel).AnalyzeSlideToResultAsync(new AnalyzeSlideRequest { Path = Cmu });
        Assert.Equal(200, r.GetProperty("http").GetInt32());
        Assert.Equal(1, r.GetProperty("header").GetInt32());
        Assert.True(r.GetProperty("progress").GetInt32() > 0);
        Assert.True(r.GetProperty("final_tiles").GetInt32() > 0);
        Assert.Equal(expected.Header.Key, r.GetProperty("result").GetProperty("key").GetString());
        Assert.Equal(expected.Header.TileCount, r.GetProperty("result").GetProperty("tile_count").GetInt32());
        Assert.Equal(expected.PredictedClassName, r.GetProperty("result").GetProperty("predicted_class_name").GetString());
        Assert.Contains("grpc-status:0", r.GetProperty("trailers").GetString()!.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public void WebListen_PublicAddressWithoutToken_RefusedNamingTheAddress()
    {
        var error = Assert.Throws<ServerConfigurationException>(() => SidecarServer.Create(
            new ServerSettings { Listen = "127.0.0.1:0", WebListen = "0.0.0.0:0" }, Serilog.Core.Logger.None, _ => { }));

        Assert.Contains("Listening on 0.0.0.0:0 exposes slides", error.Message, StringComparison.Ordinal);
    }

    private static int FreePort()
    {
        using var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>Serves the test page and takes the one report it posts back.</summary>
    private static async Task ServePageAsync(HttpListener pages, TaskCompletionSource<string> report)
    {
        byte[] page = await File.ReadAllBytesAsync(Path.Combine(TestData.RepositoryRoot, "tests", "interop", "browser", "grpc_web_analyze.html"));
        while (!report.Task.IsCompleted)
        {
            HttpListenerContext context;
            try
            {
                context = await pages.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
            {
                return; // stopped
            }

            if (context.Request.HttpMethod == "POST")
            {
                using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
                report.TrySetResult(await reader.ReadToEndAsync());
            }
            else if (context.Request.Url?.AbsolutePath == "/page.html")
            {
                context.Response.ContentType = "text/html; charset=utf-8";
                await context.Response.OutputStream.WriteAsync(page);
            }
            else
            {
                context.Response.StatusCode = 404;
            }

            context.Response.Close();
        }
    }

    private static async Task<string?> PreflightAsync(HttpClient http, string origin)
    {
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/slideplugin.v1.SlideService/GetSlideInfo");
        preflight.Headers.Add("Origin", origin);
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "content-type,x-grpc-web");
        using HttpResponseMessage response = await http.SendAsync(preflight);
        return response.Headers.TryGetValues("Access-Control-Allow-Origin", out IEnumerable<string>? values) ? values.Single() : null;
    }

    private static byte[] Frame(byte flags, byte[] payload)
    {
        byte[] framed = new byte[5 + payload.Length];
        framed[0] = flags;
        BinaryPrimitives.WriteUInt32BigEndian(framed.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(framed, 5);
        return framed;
    }

    private async Task<SidecarServer> StartAsync(string name, string? token, string origin = Origin)
    {
        var roots = new SlideRoots([TestData.Path("slides")]);
        var slides = new SlideServiceImpl(roots);
        var analyses = new AnalysisServiceImpl(roots, Path.Combine(_work, name), BundledModel.Path);
        var segmentation = new SegmentationServiceImpl(roots);
        _services.Add(slides);
        _services.Add(analyses);
        _services.Add(segmentation);
        SidecarServer server = SidecarServer.Create(
            new ServerSettings { Listen = "127.0.0.1:0", WebListen = "127.0.0.1:0", WebOrigins = [origin], Grpc = new GrpcServerOptions { AuthToken = token } },
            new LoggerConfiguration().MinimumLevel.Warning().WriteTo.Console().CreateLogger(),
            registry =>
            {
                slides.BindTo(registry);
                analyses.BindTo(registry);
                segmentation.BindTo(registry);
            });
        await server.StartAsync();
        return server;
    }
}
