using System.CommandLine;
using System.Globalization;
using SlidePlugin.Engine.Checkpoints;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.IO;
using SlidePlugin.Engine.LabelMasks;
using SlidePlugin.Engine.Segmentation;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Sidecar.Cli;

/// <summary>
/// <c>slideplugin segment</c>: weakly supervised multi-class segmentation (FCN-MIL, Pathak et al. 2015).
/// <c>train</c> learns from image-level tags (a tags CSV, or tags derived from masks); <c>predict</c> segments an image
/// or a slide region into per-class probability maps, an argmax label PNG, an overlay and QuPath detections.
/// </summary>
internal static class SegmentCommand
{
    public static Command Create(SlidePluginCli.GlobalOptions global)
    {
        _ = global;
        var command = new Command("segment", "Weakly supervised multi-class segmentation (FCN-MIL): train from image-level tags, predict on images or slide regions.");
        command.Subcommands.Add(Train());
        command.Subcommands.Add(Predict());
        return command;
    }

    private static Command Train()
    {
        var table = new Option<FileInfo>("--table") { Description = "Class table (BCSS gtruth_codes.tsv format); its first class is the background map.", Required = true };
        var images = new Option<DirectoryInfo>("--images") { Description = "Folder of training images (e.g. dataset cut's images/).", Required = true };
        var masks = new Option<DirectoryInfo?>("--masks") { Description = "Folder of masks named as the images: tags are derived from them (and they score the result)." };
        var tags = new Option<FileInfo?>("--tags") { Description = "CSV 'image,tags' (tags ';'-separated class names or codes), instead of --masks." };
        var minFraction = new Option<double>("--min-fraction") { Description = "With --masks: a class is tagged when it covers at least this fraction of an image.", DefaultValueFactory = _ => 0.01 };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for fcn-mil.safetensors, its card and losses.csv.", Required = true };
        var epochs = new Option<int>("--epochs") { Description = "Epochs.", DefaultValueFactory = _ => 10 };
        var learningRate = new Option<float>("--learning-rate") { Description = "Adam learning rate.", DefaultValueFactory = _ => 1e-3f };
        var seed = new Option<int>("--seed") { Description = "Seed of the initialisation and the shuffles.", DefaultValueFactory = _ => 1 };
        var mpp = new Option<double?>("--mpp") { Description = "Resolution of the training images, µm/px (slide regions are read at it)." };
        var name = new Option<string>("--name") { Description = "Model name in the card.", DefaultValueFactory = _ => "fcn-mil" };
        var command = new Command("train", "Train FCN-MIL from image-level tags.") { table, images, masks, tags, minFraction, output, epochs, learningRate, seed, mpp, name };
        command.SetAction((parseResult, cancellationToken) => Task.FromResult(CliWork.Run(parseResult, stdout =>
        {
            LabelTable labels = LabelTable.Load(parseResult.GetRequiredValue(table).FullName);
            string imageFolder = parseResult.GetRequiredValue(images).FullName;
            DirectoryInfo? maskFolder = parseResult.GetValue(masks);
            FileInfo? tagFile = parseResult.GetValue(tags);
            SegmentationDataset data = (tagFile, maskFolder) switch
            {
                (null, null) => throw new ArgumentException("Give the tags: --tags CSV, or --masks to derive them from label masks."),
                (not null, _) => SegmentationDataset.FromTagsCsv(tagFile.FullName, imageFolder, labels, maskFolder?.FullName),
                (null, not null) => SegmentationDataset.FromMasks(imageFolder, maskFolder.FullName, labels, parseResult.GetValue(minFraction)),
            };
            var net = new FullyConvolutionalNet(new FcnSpec { Channels = data.Channels, Classes = data.Classes.Count }, new TensorRandom((ulong)Math.Max(0, parseResult.GetValue(seed))));
            PatchNormalization normalization = data.Channels == 3 ? PatchNormalization.Centered : PatchNormalization.UnitRange;
            stdout.WriteLine($"{data.Images.Count} images, {data.Classes.Count} classes; {data.Description}");
            IReadOnlyList<double> losses = FcnMil.Train(net, data.Images, FcnSupervision.Tags, parseResult.GetValue(epochs), parseResult.GetValue(learningRate),
                (ulong)Math.Max(0, parseResult.GetValue(seed)), normalization,
                (epoch, loss) => stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"epoch {epoch}: MIL loss {loss:0.0000}")), cancellationToken);

            // JSON has no NaN or Infinity: an undefined metric (nothing to average) is left out of the card, not written.
            var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
            void AddIfDefined(string metric, double value)
            {
                if (double.IsFinite(value))
                {
                    metrics[metric] = value;
                }
            }

            AddIfDefined("final_mil_loss", losses[^1]);

            var card = new SegmentationCard
            {
                Name = parseResult.GetValue(name) ?? "fcn-mil",
                Classes = data.Classes,
                Mpp = parseResult.GetValue(mpp),
                InputMean = normalization.Mean,
                InputStd = normalization.Std,
                TrainingData = data.Description,
                Limitations = "Trained from image-level tags only; regions are the argmax of 1/4-resolution maps. Judge it on held-out masks before use.",
            };
            if (data.Images.All(i => i.Mask is not null))
            {
                var predictions = data.Images.Select(i => FcnMil.Predict(net, i.Image, normalization, card.ImageLevelThreshold).LabelsAtInputSize()).ToList();
                SegmentationMetrics scored = SegmentationMetrics.Compute([.. data.Images.Select(i => i.RequireMask())], predictions, data.Classes.Count);
                SegmentationMetrics baseline = FcnMil.TagsEverywhere(data.Images, data.Classes.Count);
                AddIfDefined("train_mean_iou", scored.MeanIoU);
                AddIfDefined("train_pixel_accuracy", scored.PixelAccuracy);
                AddIfDefined("train_mean_iou_tags_everywhere", baseline.MeanIoU);
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"training images: mean IoU {scored.MeanIoU:0.000} (tags-everywhere baseline {baseline.MeanIoU:0.000}), pixel accuracy {scored.PixelAccuracy:0.000}"));
                ReportUndefined(stdout, "mean IoU (no pixel in the masks nor predicted)", scored, data.Classes);
                ReportUndefined(stdout, "baseline (no pixel in the masks nor tagged)", baseline, data.Classes);
            }

            string folder = parseResult.GetRequiredValue(output).FullName;
            Directory.CreateDirectory(folder);
            string weights = Path.Combine(folder, "fcn-mil.safetensors");
            SegmentationCheckpoint.Save(weights, net, card with { Metrics = metrics });
            AtomicFile.WriteAllText(Path.Combine(folder, "losses.csv"),
                "epoch,mil_loss\n" + string.Concat(losses.Select((l, i) => string.Create(CultureInfo.InvariantCulture, $"{i + 1},{l:R}\n"))));
            stdout.WriteLine($"model: {weights}");
        })));
        return command;
    }

    /// <summary>Names the classes left out of a mean IoU because their IoU is undefined (an empty union).</summary>
    private static void ReportUndefined(TextWriter stdout, string mean, SegmentationMetrics metrics, IReadOnlyList<SegmentationClass> classes)
    {
        if (metrics.UndefinedClasses.Count > 0)
        {
            stdout.WriteLine($"IoU undefined, left out of the {mean}: {string.Join(", ", metrics.UndefinedClasses.Select(c => classes[c].Name))}");
        }
    }

    private static Command Predict()
    {
        var input = new Argument<FileInfo>("input") { Description = "An image (PNG, JPEG, ...) or a slide OpenSlide opens." };
        var model = new Option<FileInfo>("--model") { Description = "FCN-MIL weights (.safetensors with its .json card), from 'segment train'.", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder.", DefaultValueFactory = _ => new DirectoryInfo(".") };
        var region = new Option<string?>("--region") { Description = "Slides: the level-0 rectangle x,y,width,height to segment (default: the whole slide, if small enough)." };
        var mpp = new Option<double?>("--mpp") { Description = "Slides: the slide's resolution in µm/px when its file lacks it." };
        var targetMpp = new Option<double?>("--target-mpp") { Description = "Slides: read the region at this µm/px instead of the model's." };
        var command = new Command("predict", "Segment an image or a slide region: per-class probability PNGs, label PNG, overlay, QuPath GeoJSON detections, summary.")
        {
            input, model, output, region, mpp, targetMpp,
        };
        command.SetAction((parseResult, cancellationToken) => Task.FromResult(CliWork.Run(parseResult, stdout =>
        {
            FileInfo file = parseResult.GetRequiredValue(input);
            if (!file.Exists)
            {
                throw new ArgumentException($"Input '{file.FullName}' does not exist.");
            }

            SegmentationModel segmenter = SegmentationModel.Load(parseResult.GetRequiredValue(model).FullName);
            string folder = parseResult.GetRequiredValue(output).FullName, stem = Path.GetFileNameWithoutExtension(file.Name);
            IReadOnlyList<string> written;
            if (Slide.DetectFormat(file.FullName) is null)
            {
                Raster image = ImageCodec.Decode(File.ReadAllBytes(file.FullName));
                written = SegmentationFiles.Write(segmenter.SegmentImage(image, cancellationToken), segmenter.Card, file.FullName, folder, stem);
            }
            else
            {
                using Slide slide = Slide.Open(file.FullName);
                double slideMpp = slide.RequireMpp(parseResult.GetValue(mpp));
                (long x, long y, long width, long height) = CliWork.RegionOrWholeSlide(parseResult.GetValue(region), slide);
                SlideBounds? bounds = SlideInfo.BoundsOf(slide.Properties);
                double? target = parseResult.GetValue(targetMpp);
                double readMpp = segmenter.ReadMpp(target);
                // Said before reading: a region read finer than the slide is enlarged, and the time grows with the pixels.
                (int outWidth, int outHeight) = SlideRegionReader.Plan(slide, slideMpp, x, y, width, height, readMpp);
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"region {width}x{height} at ({x}, {y}), level 0 at {slideMpp:0.###} µm/px, read at {readMpp:0.###} µm/px ({(target is null ? "the model's" : "--target-mpp")}): {outWidth}x{outHeight} = {(long)outWidth * outHeight:N0} pixels{(readMpp < slideMpp ? $", enlarged {slideMpp / readMpp:0.##}x" : "")}"));
                written = SegmentationFiles.Write(segmenter.SegmentRegion(slide, slideMpp, x, y, width, height, target, cancellationToken),
                    segmenter.Card, file.FullName, folder, stem, bounds?.X ?? 0, bounds?.Y ?? 0);
            }

            foreach (string path in written)
            {
                stdout.WriteLine(path);
            }
        })));
        return command;
    }
}
