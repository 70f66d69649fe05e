using Serilog;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;
using SlidePlugin.Sidecar.Hosting;
using SlidePlugin.Sidecar.Services;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Services;

/// <summary>
/// An Aperio SVS with JPEG 2000 RGB tiles (compression 33005, as TCGA's), made here by make_tiff_slide.py, streamed
/// by a sidecar: libvips decodes such tiles as YCbCr, so white came back (255, 121, 255) before the direct path
/// learned which compressions it may read.
/// </summary>
public sealed class JpegTwoThousandSlideTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-j2k").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task StreamTiles_AperioJpeg2000Rgb_RawTilesIdenticalToOpenSlidePython()
    {
        string slide = Path.Combine(_folder, "j2k-rgb.svs");
        await ExternalProcess.RunReferenceScriptAsync("make_tiff_slide.py", slide, "--compression", "j2k-rgb");
        using var service = new SlideServiceImpl(new SlideRoots([_folder]));
        await using SidecarServer server = SidecarServer.Create(new ServerSettings { Listen = "127.0.0.1:0" }, new LoggerConfiguration().CreateLogger(), service.BindTo);
        await server.StartAsync();
        using GrpcChannel channel = SlidePluginChannel.ForAddress(server.Addresses.Single());

        using AsyncServerStreamingCall<StreamTilesResponse> call = new SlideService.SlideServiceClient(channel).StreamTiles(new StreamTilesRequest
        {
            Path = "j2k-rgb.svs", TargetMpp = 0.499, TileSize = 256, MinTissueFraction = 0, Encoding = new ImageEncoding { Format = ImageFormat.Raw },
        });
        var tiles = new List<SlideTile>();
        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
            if (call.ResponseStream.Current.Tile is { } tile)
            {
                tiles.Add(tile);
            }
        }

        SlideTile[] chosen = [tiles[0], tiles[tiles.Count / 2], tiles[^1]];
        byte[][] expected = (await ExternalProcess.ReferencePixelsAsync(slide, [.. chosen.Select(t => $"region:{t.Level0.X},{t.Level0.Y},0,{t.Level0.Width},{t.Level0.Height}")])).Pixels;
        for (int i = 0; i < chosen.Length; i++)
        {
            byte[] rgb = [.. expected[i].Where((_, j) => j % 4 != 3)];
            Assert.True(rgb.AsSpan().SequenceEqual(chosen[i].Image.Data.Span), $"tile at ({chosen[i].Level0.X}, {chosen[i].Level0.Y})");
        }

        Assert.Equal([255, 255, 255], chosen[0].Image.Data.Span[..3].ToArray()); // the corner is white glass
        await server.StopAsync();
    }
}
