using SlidePlugin.Benchmarks.Analysis;
using SlidePlugin.Benchmarks.Grpc;
using SlidePlugin.Benchmarks.Mil;
using SlidePlugin.Benchmarks.Segmentation;
using SlidePlugin.Benchmarks.Slides;

// Benchmarks of SlidePlugin against their references, side by side in one run.
//   dotnet run -c Release --project benchmarks/SlidePlugin.Benchmarks -- grpc [pings] [blocks] [block-bytes]
//   dotnet run -c Release --project benchmarks/SlidePlugin.Benchmarks -- tiles [slide-size ...]
//   dotnet run -c Release --project benchmarks/SlidePlugin.Benchmarks -- amil [threads] [iterations]
//   dotnet run -c Release --project benchmarks/SlidePlugin.Benchmarks -- reproduce mnist|ucsb [runs] [epochs] [threads] [ucsb repetitions]
//   dotnet run -c Release --project benchmarks/SlidePlugin.Benchmarks -- analyze [slide-size ...]
//   dotnet run -c Release --project benchmarks/SlidePlugin.Benchmarks -- segment-mnist [train] [test] [epochs]
//   dotnet run -c Release --project benchmarks/SlidePlugin.Benchmarks -- class-stats [size] [repeats]
//   dotnet run -c Release --project benchmarks/SlidePlugin.Benchmarks -- load [slide-size] [streams] [seconds] [tiles|tissue]
//   dotnet run -c Release --project benchmarks/SlidePlugin.Benchmarks -- features [generated-slide-size ...]
string which = args.Length > 0 ? args[0] : "help";
if (which is "grpc" or "tiles" or "amil" or "reproduce" or "analyze" or "segment-mnist" or "class-stats" or "load" or "features")
{
    Console.WriteLine(SlidePlugin.Benchmarks.MachineInfo.Line());
}

int Arg(int index, int fallback) => args.Length > index ? int.Parse(args[index], System.Globalization.CultureInfo.InvariantCulture) : fallback;
switch (which)
{
    case "grpc":
        return await TransportBenchmark.RunAsync(pings: Arg(1, 5000), blocks: Arg(2, 4000), blockSize: Arg(3, 64 * 1024));
    case "tiles":
        return await StreamTilesBenchmark.RunAsync(args.Length > 1 ? args[1..].Select(a => int.Parse(a, System.Globalization.CultureInfo.InvariantCulture)).ToArray() : [20000, 40000]);
    case "amil":
        return await AttentionMilBenchmark.RunAsync(threads: Arg(1, 2), iterations: Arg(2, 20));
    case "features":
        return await SlidePlugin.Benchmarks.Encoders.FeatureExtractionBenchmark.RunAsync(args.Length > 1 ? [.. args[1..].Select(a => int.Parse(a, System.Globalization.CultureInfo.InvariantCulture))] : [20000], threads: 2);
    case "grpc-server":
        return await TransportBenchmark.ServeAsync();
    case "amil-worker":
        return AttentionMilBenchmark.RunWorker(args[1], Arg(2, 2), Arg(3, 20));
    case "reproduce" when args.Length > 1 && args[1] is "mnist" or "ucsb":
        return await ReproductionBenchmark.RunAsync(args[1], runs: Arg(2, args[1] == "mnist" ? 5 : 10), epochs: Arg(3, 20), threads: Arg(4, 2), repeats: Arg(5, 1));
    case "analyze":
        return await AnalysisBenchmark.RunAsync(args.Length > 1 ? args[1..].Select(a => int.Parse(a, System.Globalization.CultureInfo.InvariantCulture)).ToArray() : [20000], threads: 2);
    case "segment-mnist":
        return SegmentationBenchmark.Run(trainCount: Arg(1, 2000), testCount: Arg(2, 500), epochs: Arg(3, 5), threads: 2);
    case "class-stats":
        return await SlidePlugin.Benchmarks.LabelMasks.ClassStatisticsBenchmark.RunAsync(size: Arg(1, 10000), repeats: Arg(2, 5));
    case "load":
        return await LoadLatencyBenchmark.RunAsync(size: Arg(1, 40000), streams: Arg(2, 32), seconds: Arg(3, 20), tissueOnly: args.Length > 4 && args[4] == "tissue");
    case "analyze-worker":
        return await AnalysisBenchmark.RunWorkerAsync(args[1], double.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture), Arg(3, 2));
    default:
        Console.Error.WriteLine("usage: SlidePlugin.Benchmarks grpc [pings=5000] [blocks=4000] [block-bytes=65536]");
        Console.Error.WriteLine("       SlidePlugin.Benchmarks tiles [slide-size=20000 40000 ...]");
        Console.Error.WriteLine("       SlidePlugin.Benchmarks amil [threads=2] [iterations=20]");
        Console.Error.WriteLine("       SlidePlugin.Benchmarks reproduce mnist|ucsb [runs=5 seeds|10 folds] [epochs=20] [threads=2] [ucsb repetitions=1]");
        Console.Error.WriteLine("       SlidePlugin.Benchmarks analyze [slide-size=20000 ...]");
        Console.Error.WriteLine("       SlidePlugin.Benchmarks segment-mnist [train=2000] [test=500] [epochs=5]");
        Console.Error.WriteLine("       SlidePlugin.Benchmarks class-stats [size=10000] [repeats=5]");
        Console.Error.WriteLine("       SlidePlugin.Benchmarks load [slide-size=40000] [streams=32] [seconds=20] [tiles|tissue]");
        Console.Error.WriteLine("       SlidePlugin.Benchmarks features [generated-slide-size=20000 ...]");
        return 2;
}
