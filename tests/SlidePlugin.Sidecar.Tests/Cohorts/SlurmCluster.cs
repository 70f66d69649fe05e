using System.Globalization;
using System.Net;
using System.Net.Sockets;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Cohorts;

/// <summary>
/// A real single-node Slurm cluster on localhost for the tests: Debian's munge and slurm-wlm daemons started in a temporary
/// folder with a generated <c>slurm.conf</c> (no cgroups: <c>proctrack/linuxproc</c>, <c>task/none</c>; free ports; the
/// daemons run as the test's user). When it cannot start, the tests using it fail with the reason and the daemons' logs.
/// </summary>
public sealed class SlurmCluster : IAsyncLifetime
{
    private static readonly string[] Programs = ["mungekey", "munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo"];

    public string Folder { get; } = Directory.CreateTempSubdirectory("slideplugin-slurm").FullName;

    public string ConfPath => Path.Combine(Folder, "slurm.conf");

    private string MungeSocket => Path.Combine(Folder, "munge.sock");

    public async Task InitializeAsync()
    {
        if (Programs.FirstOrDefault(p => !OnPath(p)) is { } missing)
        {
            throw new InvalidOperationException($"Slurm cannot start here: '{missing}' is not installed (Debian packages slurm-wlm and munge; packaging/install-deps.sh --test installs them).");
        }

        string host = (await ExternalProcess.RunAsync("hostname", ["-s"])).StandardOutput.Trim();
        string user = Environment.UserName;
        long memoryMiB = (long)(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024 * 1024) * 0.8);
        Directory.CreateDirectory(Path.Combine(Folder, "state"));
        Directory.CreateDirectory(Path.Combine(Folder, "spool"));
        File.WriteAllText(ConfPath, string.Join('\n',
        [
            "ClusterName=slideplugin-test",
            $"SlurmctldHost={host}(127.0.0.1)",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            $"AuthInfo=socket={MungeSocket}",
            "MpiDefault=none",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "ReturnToService=2",
            $"SlurmUser={user}",
            $"SlurmdUser={user}",
            $"SlurmctldPort={FreePort()}",
            $"SlurmdPort={FreePort()}",
            $"SlurmctldPidFile={Folder}/slurmctld.pid",
            $"SlurmdPidFile={Folder}/slurmd.pid",
            $"SlurmdSpoolDir={Folder}/spool",
            $"StateSaveLocation={Folder}/state",
            $"SlurmctldLogFile={Folder}/slurmctld.log",
            $"SlurmdLogFile={Folder}/slurmd.log",
            "SchedulerType=sched/builtin",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "JobCompType=jobcomp/none",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "KillWait=10",
            $"NodeName={host} NodeAddr=127.0.0.1 CPUs={Environment.ProcessorCount} RealMemory={memoryMiB} State=UNKNOWN",
            "PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ]));

        string key = Path.Combine(Folder, "munge.key");
        await Require("mungekey", "-c", "-k", key);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        // --force: munged refuses to run as root without it (the test machine runs as root).
        await Require("munged", "--force", $"--socket={MungeSocket}", $"--key-file={key}", $"--log-file={Folder}/munged.log",
            $"--pid-file={Folder}/munged.pid", $"--seed-file={Folder}/munged.seed");
        await Require("slurmctld", "-i");
        await Require("slurmd");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string state = "";
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            state = (await RunAsync("sinfo", "-h", "-o", "%t")).StandardOutput.Trim();
            if (state is "idle" or "mix" or "alloc")
            {
                return;
            }

            await Task.Delay(250);
        }

        throw new InvalidOperationException($"Slurm did not bring its node up in 60 s (state '{state}').\n{Logs()}");
    }

    public async Task DisposeAsync()
    {
        await RunAsync("scancel", "--user", Environment.UserName);
        foreach (string daemon in new[] { "slurmd", "slurmctld", "munged" })
        {
            string pidFile = Path.Combine(Folder, daemon + ".pid");
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture, out int pid))
            {
                try
                {
                    using var process = System.Diagnostics.Process.GetProcessById(pid);
                    process.Kill();
                    await process.WaitForExitAsync();
                }
                catch (ArgumentException)
                {
                    // Already gone.
                }
            }
        }

        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // A daemon's last write; the temporary folder is left.
        }
    }

    /// <summary>Runs a Slurm client command against this cluster.</summary>
    internal Task<ProcessResult> RunAsync(string program, params string[] arguments) =>
        ExternalProcess.RunAsync(Which(program), arguments, new Dictionary<string, string?> { ["SLURM_CONF"] = ConfPath }, TimeSpan.FromSeconds(60));

    /// <summary>Submits a batch script (extra sbatch options first) and returns the job id.</summary>
    public async Task<string> SubmitAsync(string script, params string[] options)
    {
        ProcessResult submitted = await RunAsync("sbatch", [.. options, "--parsable", script]);
        Assert.True(submitted.ExitCode == 0, $"sbatch failed: {submitted.StandardError}\n{Logs()}");
        return submitted.StandardOutput.Trim().Split(';')[0];
    }

    /// <summary>Waits until <paramref name="job"/> (every element of an array) has left the queue.</summary>
    public async Task WaitForAsync(string job, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            ProcessResult queue = await RunAsync("squeue", "-h", "-j", job);
            if (queue.ExitCode == 0 && queue.StandardOutput.Trim().Length == 0)
            {
                return;
            }

            await Task.Delay(300);
        }

        throw new TimeoutException($"Job {job} was still queued after {timeout.TotalSeconds} s.\n{(await RunAsync("squeue", "-j", job)).StandardOutput}\n{Logs()}");
    }

    /// <summary>The ends of the daemons' logs, for a failure message.</summary>
    public string Logs() => string.Join('\n', new[] { "munged.log", "slurmctld.log", "slurmd.log" }.Select(name =>
    {
        string path = Path.Combine(Folder, name);
        return File.Exists(path) ? $"--- {name}\n{string.Join('\n', File.ReadLines(path).TakeLast(15))}" : $"--- {name}: none";
    }));

    private async Task Require(string program, params string[] arguments)
    {
        // Daemons fork and keep their parent's output open: started through bash with their output in a file, so waiting
        // for the command does not wait for the daemon.
        string start = Path.Combine(Folder, "start.log");
        string line = string.Join(' ', new[] { Which(program) }.Concat(arguments).Select(a => "'" + a.Replace("'", "'\\''", StringComparison.Ordinal) + "'"));
        ProcessResult result = await ExternalProcess.RunAsync("bash", ["-c", $"{line} </dev/null >>'{start}' 2>&1"],
            new Dictionary<string, string?> { ["SLURM_CONF"] = ConfPath }, TimeSpan.FromSeconds(60));
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"Slurm cannot start here: '{program} {string.Join(' ', arguments)}' exited {result.ExitCode}: {File.ReadAllText(start)}\n{Logs()}");
        }
    }

    private static string Which(string program) =>
        SearchPath.Select(dir => Path.Combine(dir, program)).FirstOrDefault(File.Exists) ?? program;

    private static IEnumerable<string> SearchPath => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Concat(["/usr/sbin", "/sbin", "/usr/bin"]);

    private static bool OnPath(string program) => SearchPath.Any(dir => File.Exists(Path.Combine(dir, program)));

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
