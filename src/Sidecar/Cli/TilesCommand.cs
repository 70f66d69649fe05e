using System.CommandLine;

namespace SlidePlugin.Sidecar.Cli;

/// <summary><c>slideplugin tiles</c>: finds tissue on a slide and writes its tiles at a chosen resolution.</summary>
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
        var minTissue = new Option<double>("--min-tissue") { Description = "Minimum tissue fraction (0..1) for a tile to be kept.", DefaultValueFactory = _ => 0.5 };
        var format = new Option<string>("--format") { Description = "Tile encoding: jpeg or png.", DefaultValueFactory = _ => "jpeg" };
        format.AcceptOnlyFromAmong("jpeg", "png");
        var mpp = new Option<double?>("--mpp") { Description = "The slide's own resolution in µm per pixel, for files that lack it." };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for the tiles and their index.", Required = true };

        var command = new Command("tiles", "Detect tissue and write the slide's tissue tiles at a target resolution.");
        command.Arguments.Add(slide);
        foreach (Option option in new Option[] { targetMpp, magnification, tileSize, overlap, minTissue, format, mpp, output })
        {
            command.Options.Add(option);
        }

        command.SetAction(parseResult => SlidePluginCli.ReportNotImplemented(parseResult, "tiling ('tiles')", 4));
        return command;
    }
}
