using System.Globalization;
using SlidePlugin.Engine.Analysis;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Sidecar.Cli;
using SlidePlugin.Sidecar.Cohorts;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Cohorts;

/// <summary>
/// <c>cohort plan / run-task / status / collect</c> on a real single-node Slurm cluster: the job array's table equals
/// analysing the slides one after another, a broken slide fails its own task only, and a task cancelled mid-slide and run
/// again ends with the same files as an uninterrupted run.
/// </summary>
public sealed class CohortSlurmTests(SlurmCluster cluster) : IClassFixture<SlurmCluster>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("slideplugin-cohort").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static async Task<(int ExitCode, string Output, string Error)> CliAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int exitCode = await SlidePluginCli.RunAsync(args, output, error);
        return (exitCode, output.ToString(), error.ToString());
    }

    /// <summary>The slide analysed in-process, alone, with a store of its own: the reference a task must equal.</summary>
    private AnalysisResult AnalyseSequentially(string slidePath, string name)
    {
        using Slide slide = Slide.Open(slidePath);
        var analyzer = new SlideAnalyzer(new AnalysisStore(Path.Combine(_folder, name + ".sqlite")), AnalysisModel.Load(BundledModel.Path));
        return analyzer.AnalyzeAsync(slide, slide.RequireMpp(), new AnalysisOptions()).GetAwaiter().GetResult();
    }

    [Fact]
    public async Task JobArray_SixSlidesAndABrokenOne_TableEqualsSequentialAnalysesAndNamesTheFailure()
    {
        string[] slides = [.. Enumerable.Range(0, 6).Select(i => SyntheticSlides.CohortSlide(i).Path)];
        string broken = TestData.Path("slides", "broken.svs");
        string list = Path.Combine(_folder, "slides.csv");
        await File.WriteAllLinesAsync(list, ["slide", .. slides, broken]);
        string run = Path.Combine(_folder, "run");

        (int planExit, string planned, string planError) = await CliAsync("cohort", "plan", "--slides", list, "--out", run, "--cpus-per-task", "1", "--max-parallel", "4");
        Assert.True(planExit == ExitCodes.Success, planError);
        Assert.Contains("Planned 7 slides", planned, StringComparison.Ordinal);
        string script = await File.ReadAllTextAsync(Path.Combine(run, "cohort.sbatch"));
        Assert.Contains("#SBATCH --array=0-6%4", script, StringComparison.Ordinal);
        Assert.Contains("#SBATCH --requeue", script, StringComparison.Ordinal);

        string job = await cluster.SubmitAsync(Path.Combine(run, "cohort.sbatch"));
        await cluster.WaitForAsync(job, TimeSpan.FromMinutes(5));

        (_, string status, _) = await CliAsync("cohort", "status", "--run", run);
        Assert.Contains("7 slides: 6 done, 0 running, 1 failed", status, StringComparison.Ordinal);
        (int collectExit, _, string collectError) = await CliAsync("cohort", "collect", "--run", run);
        Assert.True(collectExit == ExitCodes.Success, collectError);
        string[] table = await File.ReadAllLinesAsync(Path.Combine(run, "cohort.csv"));
        Assert.Equal("index,slide,status,prediction,prob_benign,prob_malignant,tiles,seconds,reason", table[0]);
        for (int i = 0; i < slides.Length; i++)
        {
            IReadOnlyList<string> row = SlidePlugin.Engine.IO.CsvFields.Split(table[i + 1]);
            AnalysisResult expected = AnalyseSequentially(slides[i], $"reference-{i}");
            Assert.Equal(slides[i], row[1]);
            Assert.Equal("done", row[2]);
            Assert.Equal(expected.PredictedClassName, row[3]);
            Assert.Equal(expected.Probabilities.Select(p => p.ToString("R", CultureInfo.InvariantCulture)), row.Skip(4).Take(2));
            Assert.Equal(expected.Tiles.Count.ToString(CultureInfo.InvariantCulture), row[6]);
            Assert.Equal("", row[8]);
        }

        IReadOnlyList<string> failed = SlidePlugin.Engine.IO.CsvFields.Split(table[7]);
        Assert.Equal(broken, failed[1]);
        Assert.Equal("failed", failed[2]);
        Assert.Contains("broken.svs", failed[8], StringComparison.Ordinal);
        Assert.Contains(failed[8], status, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunTask_CancelledMidSlideThenRunAgain_SameFilesAsAnUninterruptedRun()
    {
        string slidePath = SyntheticSlides.Large();
        string list = Path.Combine(_folder, "one.csv");
        await File.WriteAllLinesAsync(list, ["slide", slidePath]);
        string run = Path.Combine(_folder, "run");
        Assert.Equal(ExitCodes.Success, (await CliAsync("cohort", "plan", "--slides", list, "--out", run, "--cpus-per-task", "2")).ExitCode);
        string script = Path.Combine(run, "cohort.sbatch");
        string slideFolder = Path.Combine(run, "slides", Path.GetFileNameWithoutExtension(slidePath));

        string job = await cluster.SubmitAsync(script);
        // Cancel once the task's log shows scored tiles (a progress line every tenth of the slide).
        string log = Path.Combine(run, "logs", $"{job}_0.out");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!(File.Exists(log) && (await File.ReadAllTextAsync(log)).Contains("tiles=", StringComparison.Ordinal)))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(3), $"the task never reported scored tiles.\n{(File.Exists(log) ? await File.ReadAllTextAsync(log) : "no log")}\n{cluster.Logs()}");
            await Task.Delay(50);
        }

        Assert.Equal(0, (await cluster.RunAsync("scancel", $"{job}_0")).ExitCode);
        await cluster.WaitForAsync(job, TimeSpan.FromMinutes(1));
        Assert.False(File.Exists(CohortRun.ResultPath(slideFolder)), "the cancelled task finished its slide before the cancel reached it");
        Assert.True(File.Exists(CohortRun.StorePath(slideFolder)));
        (_, string stopped, _) = await CliAsync("cohort", "status", "--run", run);
        Assert.Contains("1 slides: 0 done", stopped, StringComparison.Ordinal);

        string again = await cluster.SubmitAsync(script, "--array=0");
        await cluster.WaitForAsync(again, TimeSpan.FromMinutes(5));
        string resumedLog = await File.ReadAllTextAsync(Path.Combine(run, "logs", $"{again}_0.out"));
        Assert.True(File.Exists(CohortRun.ResultPath(slideFolder)), resumedLog);

        // The uninterrupted run, through the same verb outside Slurm.
        string straight = Path.Combine(_folder, "straight");
        Assert.Equal(ExitCodes.Success, (await CliAsync("analyze", slidePath, "--out", straight)).ExitCode);
        string stem = Path.GetFileNameWithoutExtension(slidePath);
        foreach (string file in new[] { $"{stem}.tiles.csv", $"{stem}.geojson" })
        {
            byte[] expected = await File.ReadAllBytesAsync(Path.Combine(straight, file)), actual = await File.ReadAllBytesAsync(Path.Combine(slideFolder, file));
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"{file} differs");
        }
    }
}
