using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.LabelMasks;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Engine.Slides;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>
/// <c>slideplugin dataset</c>: preparing data sets. <c>stats</c> counts pixels per class of label masks, <c>cut</c>
/// cuts images and their masks into aligned patches with an index, <c>palette</c> colours masks (and back), <c>merge</c> folds rare classes,
/// <c>breakhis-layout</c> converts BreakHis into the layout <c>train --dataset breakhis</c> reads.
/// </summary>
internal static class DatasetCommand
{
    public static Command Create(SlidePluginCli.GlobalOptions global)
    {
        _ = global;
        var command = new Command("dataset", "Prepare data sets: per-class mask statistics, patch cutting, the BreakHis layout.");
        command.Subcommands.Add(Stats());
        command.Subcommands.Add(Cut());
        command.Subcommands.Add(Palette());
        command.Subcommands.Add(Merge());
        command.Subcommands.Add(BreakHis());
        return command;
    }

    private static Option<FileInfo> TableOption() => new("--table")
    {
        Description = "Class table in the BCSS gtruth_codes.tsv format (label<TAB>GT_code[<TAB>color]).",
        Required = true,
    };

    private static Command Stats()
    {
        var table = TableOption();
        var masks = new Option<DirectoryInfo>("--masks") { Description = "Folder of single-band mask PNGs (the pixel value is the class code).", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for class-stats.csv, class-stats.json and the bar chart class-stats.png.", Required = true };
        var command = new Command("stats", "Pixel counts and fractions per class, per mask and in total.") { table, masks, output };
        command.SetAction(parseResult => CliWork.Run(parseResult, stdout =>
        {
            LabelTable labels = LabelTable.Load(parseResult.GetRequiredValue(table).FullName);
            string[] files = MaskFiles(parseResult.GetRequiredValue(masks).FullName);
            ClassCounts[] counts = [.. files.AsParallel().AsOrdered().Select(f => ClassStatistics.Of(Path.GetFileNameWithoutExtension(f), LabelMask.Load(f, labels), labels))];
            string folder = parseResult.GetRequiredValue(output).FullName;
            Directory.CreateDirectory(folder);
            AtomicFile.WriteAllText(Path.Combine(folder, "class-stats.csv"), ClassStatistics.ToCsv(counts, labels));
            ClassCounts total = ClassStatistics.Total(counts);
            AtomicFile.WriteAllText(Path.Combine(folder, "class-stats.json"), JsonSerializer.Serialize(new
            {
                masks = counts.Length,
                pixels = total.Pixels,
                classes = labels.Classes.Select(c => new { name = c.Name, code = c.Code, pixels = total.Counts.GetValueOrDefault(c.Code), fraction = total.FractionOf(c.Code) }),
            }, JsonOptions));
            AtomicFile.WriteAllBytes(Path.Combine(folder, "class-stats.png"), ImageCodec.EncodePng(ClassStatistics.RenderChart(total, labels)));
            foreach (LabelClass c in labels.Classes.Where(c => total.Counts.GetValueOrDefault(c.Code) > 0))
            {
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{c.Name,-24} {total.Counts[c.Code],14} px  {total.FractionOf(c.Code),8:P2}"));
            }

            stdout.WriteLine($"{counts.Length} masks, {total.Pixels} pixels; {Path.Combine(folder, "class-stats.csv")}");
        }));
        return command;
    }

    private static Command Cut()
    {
        var table = TableOption();
        var images = new Option<DirectoryInfo?>("--images") { Description = "Folder of images (with --masks)." };
        var masks = new Option<DirectoryInfo?>("--masks") { Description = "Folder of masks named as their images (same file stem, .png)." };
        var slide = new Option<FileInfo?>("--slide") { Description = "Instead of --images: a slide; its --region is read at the size of --mask." };
        var region = new Option<string?>("--region") { Description = "With --slide: the level-0 rectangle x,y,width,height the mask covers (default: the whole slide)." };
        var mask = new Option<FileInfo?>("--mask") { Description = "With --slide: the label mask drawn over the region." };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for images/, masks/ and index.csv.", Required = true };
        var size = new Option<int>("--size") { Description = "Patch edge in pixels.", DefaultValueFactory = _ => 256 };
        var stride = new Option<int>("--stride") { Description = "Step between patches (the last row and column are aligned to the border).", DefaultValueFactory = _ => 128 };
        var minValid = new Option<double>("--min-valid") { Description = "Skip patches whose annotated (not code 0) fraction is below this.", DefaultValueFactory = _ => 0.5 };
        var command = new Command("cut", "Cut images (or a slide region) and their label masks into aligned patches <id>_<x>_<y>.png with an index of per-class pixel counts.")
        {
            table, images, masks, slide, region, mask, output, size, stride, minValid,
        };
        command.SetAction(parseResult => CliWork.Run(parseResult, stdout =>
        {
            LabelTable labels = LabelTable.Load(parseResult.GetRequiredValue(table).FullName);
            var options = new PatchCutOptions { Size = parseResult.GetValue(size), Stride = parseResult.GetValue(stride), MinValidFraction = parseResult.GetValue(minValid) };
            string folder = parseResult.GetRequiredValue(output).FullName;
            var patches = new List<MaskPatch>();
            int sources = 0;
            double best = 0;
            foreach ((string id, Func<LabelMask, Raster> read, string maskPath) in Sources(parseResult.GetValue(images), parseResult.GetValue(masks), parseResult.GetValue(slide), parseResult.GetValue(region), parseResult.GetValue(mask)))
            {
                LabelMask codes = LabelMask.Load(maskPath, labels);
                Raster pixels = read(codes);
                IReadOnlyList<MaskPatch> cut = PatchCutter.Cut(id, pixels.Bands == 4 ? pixels.Flatten((255, 255, 255)) : pixels, codes, folder, options);
                patches.AddRange(cut);
                sources++;
                best = cut.Count == 0 ? Math.Max(best, PatchCutter.LargestValidFraction(codes, options)) : best;
            }

            if (patches.Count == 0)
            {
                // Exit 0 with "0 patches" left users guessing; say what kept every patch out and which option lets them in.
                throw new LabelMaskException(sources == 0
                    ? $"No patch written: '{parseResult.GetValue(images)?.FullName}' holds no images."
                    : string.Create(CultureInfo.InvariantCulture,
                        $"No patch written: no {options.Size} px patch of the {sources} mask(s) has an annotated share of at least --min-valid {options.MinValidFraction:0.###} (code {options.UnannotatedCode}, '{labels[options.UnannotatedCode]?.Name ?? "unannotated"}', counts as unannotated); the largest is {best:0.###}. Lower --min-valid (0 keeps every patch), or check that the masks hold the table's codes."));
            }

            AtomicFile.WriteAllText(Path.Combine(folder, "index.csv"), PatchCutter.IndexCsv(patches, labels));
            stdout.WriteLine($"{patches.Count} patches of {options.Size} px; {Path.Combine(folder, "index.csv")}");
        }));
        return command;
    }

    /// <summary>What to cut: each image of a folder with its mask, or one slide region read at its mask's size.</summary>
    private static IEnumerable<(string Id, Func<LabelMask, Raster> Read, string MaskPath)> Sources(DirectoryInfo? images, DirectoryInfo? masks, FileInfo? slide, string? region, FileInfo? mask)
    {
        if (slide is not null)
        {
            if (mask is null || images is not null)
            {
                throw new ArgumentException("--slide takes one --mask (a file), not --images.");
            }

            yield return (Path.GetFileNameWithoutExtension(slide.Name), codes =>
            {
                using Slide opened = Slide.Open(slide.FullName);
                (long x, long y, long width, long height) = CliWork.RegionOrWholeSlide(region, opened);
                return SlideRegionReader.ReadToSize(opened, x, y, width, height, codes.Width, codes.Height);
            }, mask.FullName);
            yield break;
        }

        if (images is null || masks is null)
        {
            throw new ArgumentException("Give --images and --masks (folders), or --slide with --mask.");
        }

        foreach (string image in Directory.GetFiles(images.FullName).Order(StringComparer.Ordinal))
        {
            string maskPath = Path.Combine(masks.FullName, Path.GetFileNameWithoutExtension(image) + ".png");
            yield return File.Exists(maskPath)
                ? (Path.GetFileNameWithoutExtension(image), _ => ImageCodec.Decode(File.ReadAllBytes(image)), maskPath)
                : throw new LabelMaskException($"Image '{image}' has no mask '{maskPath}'.");
        }
    }

    private static Command Palette()
    {
        var table = TableOption();
        var masks = new Option<DirectoryInfo>("--masks") { Description = "Folder of masks: single-band code PNGs, or coloured PNGs with --to-codes.", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for the converted masks (same names).", Required = true };
        var toCodes = new Option<bool>("--to-codes") { Description = "The other way: coloured masks back to single-band code PNGs." };
        var tolerance = new Option<double?>("--tolerance")
        {
            Description = "With --to-codes: a colour off the table's takes the nearest class colour when within this RGB distance (0-441; edges blended by anti-aliasing are a few tens away). Default 0: the table's colours only.",
        };
        var command = new Command("palette", "Colour label masks with the table's colours as indexed PNGs that keep the codes (or back with --to-codes).")
        {
            table, masks, output, toCodes, tolerance,
        };
        command.SetAction(parseResult => CliWork.Run(parseResult, stdout =>
        {
            bool back = parseResult.GetValue(toCodes);
            double? maxDistance = parseResult.GetValue(tolerance);
            if (maxDistance is { } d && (!back || !(d >= 0)))
            {
                throw new ArgumentException(back ? $"--tolerance {d} is not a distance: give 0 or more (RGB, 0-441)." : "--tolerance applies with --to-codes (coloured masks back to codes).");
            }

            LabelTable labels = LabelTable.Load(parseResult.GetRequiredValue(table).FullName);
            string folder = parseResult.GetRequiredValue(output).FullName;
            Directory.CreateDirectory(folder);
            string[] files = MaskFiles(parseResult.GetRequiredValue(masks).FullName);
            long pixels = 0, snapped = 0;
            double largest = 0;
            var gate = new Lock();
            Parallel.ForEach(files, file =>
            {
                byte[] png;
                if (back)
                {
                    PaletteDecoding decoded = LabelPalette.DecodeNearest(File.ReadAllBytes(file), labels, file, maxDistance ?? 0);
                    png = ImageCodec.EncodePng(decoded.Mask.ToRaster());
                    lock (gate)
                    {
                        pixels += decoded.Mask.Codes.Length;
                        snapped += decoded.SnappedPixels;
                        largest = Math.Max(largest, decoded.LargestDistance);
                    }
                }
                else
                {
                    png = LabelPalette.EncodeIndexedPng(LabelMask.Load(file, labels), labels);
                }

                AtomicFile.WriteAllBytes(Path.Combine(folder, Path.GetFileName(file)), png);
            });
            stdout.WriteLine($"{files.Length} masks {(back ? "turned back into codes" : "coloured")} into {folder}");
            if (snapped > 0)
            {
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{snapped:N0} of {pixels:N0} pixels ({(double)snapped / pixels:P2}) were off the table's colours and took the nearest class colour (largest distance {largest:0.#}, --tolerance {maxDistance:0.#})"));
            }
        }));
        return command;
    }

    private static Command Merge()
    {
        var table = TableOption();
        var masks = new Option<DirectoryInfo>("--masks") { Description = "Folder of single-band code masks.", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for the rewritten masks and merge.json.", Required = true };
        var minFraction = new Option<double?>("--min-fraction") { Description = "Classes below this share of the annotated pixels (all masks) go into --other." };
        var map = new Option<string?>("--map") { Description = "Explicit moves 'from=to,...' by name or code, e.g. dcis=tumor,angioinvasion=other." };
        var other = new Option<string>("--other") { Description = "The class rare ones go into.", DefaultValueFactory = _ => "other" };
        var command = new Command("merge", "Fold rare classes into one (by a fraction threshold or an explicit map) and rewrite the masks.")
        {
            table, masks, output, minFraction, map, other,
        };
        command.SetAction(parseResult => CliWork.Run(parseResult, stdout =>
        {
            LabelTable labels = LabelTable.Load(parseResult.GetRequiredValue(table).FullName);
            string[] files = MaskFiles(parseResult.GetRequiredValue(masks).FullName);
            ClassMerge merge = (parseResult.GetValue(map), parseResult.GetValue(minFraction)) switch
            {
                ({ } explicitMap, null) => ClassMerge.FromMap(explicitMap, labels),
                (null, { } fraction) => ClassMerge.ByFraction(
                    ClassStatistics.Total(files.AsParallel().Select(f => ClassStatistics.Of(f, LabelMask.Load(f, labels), labels))), labels, fraction, parseResult.GetRequiredValue(other)),
                _ => throw new ArgumentException("Give exactly one of --min-fraction and --map."),
            };
            string folder = parseResult.GetRequiredValue(output).FullName;
            Directory.CreateDirectory(folder);
            Parallel.ForEach(files, file => AtomicFile.WriteAllBytes(Path.Combine(folder, Path.GetFileName(file)),
                ImageCodec.EncodePng(merge.Apply(LabelMask.Load(file, labels)).ToRaster())));
            AtomicFile.WriteAllText(Path.Combine(folder, "merge.json"), JsonSerializer.Serialize(
                merge.Moves.Select(m => new { from = labels[m.Key]!.Name, from_code = m.Key, to = labels[m.Value]!.Name, to_code = m.Value }), JsonOptions));
            stdout.WriteLine($"{merge.Moves.Count} classes merged ({string.Join(", ", merge.Moves.Select(m => $"{labels[m.Key]!.Name} -> {labels[m.Value]!.Name}"))}); {files.Length} masks rewritten into {folder}");
        }));
        return command;
    }

    private static Command BreakHis()
    {
        var source = new Option<DirectoryInfo>("--source") { Description = "BreakHis as downloaded (fold layout) or folders of SOB_*.png files.", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for <magnification>/<train|test>/<0|1>/*.png.", Required = true };
        var fold = new Option<string>("--fold") { Description = "The fold to use from the fold layout.", DefaultValueFactory = _ => "fold1" };
        var testFraction = new Option<double>("--test-fraction") { Description = "Without folds: the fraction of patients held out for testing.", DefaultValueFactory = _ => 0.3 };
        var command = new Command("breakhis-layout", "Convert BreakHis into the seed paper's <magnification>/<train|test>/<0|1> layout (split by patient).")
        {
            source, output, fold, testFraction,
        };
        command.SetAction(parseResult => CliWork.Run(parseResult, stdout =>
        {
            BreakHisConversion done = BreakHisLayout.Convert(parseResult.GetRequiredValue(source).FullName, parseResult.GetRequiredValue(output).FullName,
                parseResult.GetRequiredValue(fold), parseResult.GetValue(testFraction));
            stdout.WriteLine($"{done.Copied} images copied, {done.AlreadyThere} already there, {done.Ignored} ignored.");
        }));
        return command;
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    private static string[] MaskFiles(string folder) =>
        Directory.Exists(folder)
            ? [.. Directory.GetFiles(folder, "*.png").Order(StringComparer.Ordinal)]
            : throw new LabelMaskException($"Mask folder '{folder}' does not exist.");
}
