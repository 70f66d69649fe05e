using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using SlidePlugin.Engine.Annotations;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>
/// <c>slideplugin tiles</c>: finds tissue on a slide and writes its tiles at a chosen resolution, named by
/// their level-0 coordinates (<c>{x}_{y}.jpeg</c>), with an index (<c>tiles.csv</c>, WSInfer's
/// minx,miny,width,height columns) and the tissue outline for QuPath (<c>tissue.geojson</c>).
/// Every file is written to a temporary name and renamed, so an interrupted run leaves no partial file.
/// </summary>
internal static class TilesCommand
{
    public static Command Create(SlidePluginCli.GlobalOptions global)
    {
        _ = global;
        var slide = new Argument<FileInfo>("slide") { Description = "Whole-slide image (SVS, NDPI, MRXS, tiled TIFF, ...)." };
        var targetMpp = new Option<double?>("--target-mpp") { Description = "Tile resolution in µm per pixel (e.g. 0.5)." };
        var magnification = new Option<double?>("--magnification") { Description = "Tile resolution as objective magnification (e.g. 20); alternative to --target-mpp." };
        var tileSize = new Option<int>("--tile-size") { Description = "Tile edge in pixels at the target resolution.", DefaultValueFactory = _ => 256 };
        var overlap = new Option<int>("--overlap") { Description = "Overlap between neighbouring tiles, in target pixels.", DefaultValueFactory = _ => 0 };
        var minTissue = new Option<double>("--min-tissue") { Description = "Minimum tissue fraction (0..1) for a tile to be kept; 0 keeps every tile.", DefaultValueFactory = _ => 0.5 };
        var format = new Option<string>("--format") { Description = "Tile encoding: jpeg or png.", DefaultValueFactory = _ => "jpeg" };
        format.AcceptOnlyFromAmong("jpeg", "png");
        var quality = new Option<int>("--quality") { Description = "JPEG quality (1-100).", DefaultValueFactory = _ => 90 };
        var mpp = new Option<double?>("--mpp") { Description = "The slide's own resolution in µm per pixel, for files that lack it." };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for the tiles and their index.", Required = true };

        var command = new Command("tiles", "Detect tissue and write the slide's tissue tiles at a target resolution, with tiles.csv and tissue.geojson.");
        command.Arguments.Add(slide);
        foreach (Option option in new Option[] { targetMpp, magnification, tileSize, overlap, minTissue, format, quality, mpp, output })
        {
            command.Options.Add(option);
        }

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            TextWriter stderr = parseResult.InvocationConfiguration.Error;
            if (!NativeCheck.Passes(stderr, out _))
            {
                return ExitCodes.MissingNativeDependency;
            }

            var options = new TileGridOptions
            {
                TargetMpp = parseResult.GetValue(targetMpp),
                Magnification = parseResult.GetValue(magnification),
                TileSize = parseResult.GetValue(tileSize),
                Overlap = parseResult.GetValue(overlap),
                MinTissueFraction = parseResult.GetValue(minTissue),
            };
            if (options.TargetMpp is null == options.Magnification is null)
            {
                stderr.WriteLine("slideplugin: give exactly one of --target-mpp and --magnification.");
                return ExitCodes.Usage;
            }

            if (options.MinTissueFraction is < 0 or > 1 || parseResult.GetValue(quality) is < 1 or > 100)
            {
                stderr.WriteLine("slideplugin: --min-tissue must be within 0..1 and --quality within 1..100.");
                return ExitCodes.Usage;
            }

            return await RunAsync(parseResult.GetRequiredValue(slide), parseResult.GetValue(mpp), options, parseResult.GetRequiredValue(format),
                parseResult.GetValue(quality), parseResult.GetRequiredValue(output), parseResult.InvocationConfiguration.Output, stderr, cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(FileInfo slideFile, double? mppOverride, TileGridOptions options, string format, int quality,
        DirectoryInfo output, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        if (!CliSlides.TryOpen(slideFile, mppOverride, stderr, out Slide slide, out _, out double mpp))
        {
            return ExitCodes.Failure;
        }

        using (slide)
        {
            var clock = Stopwatch.StartNew();
            TissueMask tissue;
            TileGrid grid;
            try
            {
                (grid, TissueMask? detected) = TileGrid.OverTissue(slide, mpp, options, cancellationToken: cancellationToken);
                tissue = detected!;
                if (grid.ResolutionWarning is { } warning)
                {
                    stderr.WriteLine($"slideplugin: warning: {warning}");
                }
            }
            catch (Exception e) when (e is SlideException or ArgumentException)
            {
                stderr.WriteLine($"slideplugin: {e.Message}");
                return ExitCodes.Failure;
            }

            output.Create();
            AtomicFile.WriteAllText(Path.Combine(output.FullName, "tissue.geojson"), QuPathGeoJson.TissueFeatureCollection(slide, tissue.Polygons));

            var index = new StringBuilder("file,column,row,minx,miny,width,height,tissue_fraction\n");
            try
            {
                await foreach ((Tile tile, string name) in TileReader.ReadAsync(grid, slide, (tile, rgb) =>
                {
                    string name = string.Create(CultureInfo.InvariantCulture, $"{tile.X}_{tile.Y}.{format}");
                    AtomicFile.WriteAllBytes(Path.Combine(output.FullName, name), format == "png" ? ImageCodec.EncodePng(rgb) : ImageCodec.EncodeJpeg(rgb, quality));
                    return name;
                }, Math.Max(4, 2 * Environment.ProcessorCount), cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    index.Append(CultureInfo.InvariantCulture, $"{name},{tile.Column},{tile.Row},{tile.X},{tile.Y},{tile.Width},{tile.Height},{tile.TissueFraction:0.####}\n");
                }
            }
            catch (SlideException e)
            {
                stderr.WriteLine($"slideplugin: {e.Message}");
                return ExitCodes.Failure;
            }

            AtomicFile.WriteAllText(Path.Combine(output.FullName, "tiles.csv"), index.ToString());
            double seconds = clock.Elapsed.TotalSeconds;
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{grid.Tiles.Count} tiles of {grid.TileSize} px at {grid.TargetMpp:0.###} µm/px (grid {grid.Columns} x {grid.Rows}, tissue {tissue.TissueFraction:P1}) written to {output.FullName} in {seconds:0.0} s ({grid.Tiles.Count / Math.Max(seconds, 1e-9):0} tiles/s)"));
            return ExitCodes.Success;
        }
    }
}
