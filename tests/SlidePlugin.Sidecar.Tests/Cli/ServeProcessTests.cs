using System.Diagnostics;
using System.Text.RegularExpressions;
using Grpc.Core;
using Grpc.Net.Client;
using SlidePlugin.Client;
using SlidePlugin.Protos.V1;
using SlidePlugin.Tests;

namespace SlidePlugin.Sidecar.Tests.Cli;

/// <summary><c>slideplugin serve</c> as a real process: it serves, answers, and stops cleanly on SIGTERM.</summary>
public partial class ServeProcessTests
{
    private static readonly string Executable = Path.Combine(AppContext.BaseDirectory, "slideplugin.dll");

    [GeneratedRegex(@"serving gRPC on \[""(?<address>http://[^""]+)""\]")]
    private static partial Regex ServingLine();

    [Fact]
    public async Task Serve_ThenSigterm_AnswersGetServerInfoAndExitsZero()
    {
        var startInfo = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string arg in new[] { Executable, "serve", "--listen", "127.0.0.1:0", "--shutdown-grace", "1" })
        {
            startInfo.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(startInfo)!;
        try
        {
            string address = await WaitForAddressAsync(process);
            using GrpcChannel channel = SlidePluginChannel.ForAddress(address);
            GetServerInfoResponse info = await new SystemService.SystemServiceClient(channel).GetServerInfoAsync(
                new GetServerInfoRequest(), new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10)));

            Assert.Equal("0.1.0", info.Version);
            Assert.Contains("slideplugin.v1", info.ApiVersions);
            Assert.Equal(["OpenSlide", "libvips", "OpenBLAS", "TurboJPEG", "libpng"], info.NativeLibraries.Select(l => l.Name));
            Assert.Equal("3.4.1", info.NativeLibraries[0].Version);

            ProcessResult kill = await ExternalProcess.RunAsync("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            Assert.Equal(0, kill.ExitCode);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await process.WaitForExitAsync(timeout.Token);
            Assert.Equal(0, process.ExitCode);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    [Fact]
    public async Task Serve_HostileImages_PeakRssStaysUnder600MiBAndSlidesStillAnswer()
    {
        string work = Directory.CreateTempSubdirectory("slideplugin-serve-memory").FullName;
        var startInfo = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string arg in new[] { Executable, "serve", "--listen", "127.0.0.1:0", "--slide-root", TestData.Path("slides"), "--work-dir", work })
        {
            startInfo.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(startInfo)!;
        try
        {
            using GrpcChannel channel = SlidePluginChannel.ForAddress(await WaitForAddressAsync(process));
            var analysis = new AnalysisService.AnalysisServiceClient(channel);
            byte[] large = HostilePng.Black(1000, 1000), huge = HostilePng.Black(30000, 30000);

            // 300 patches of a megapixel each (900 MB if held decoded; refused since patches have the model's size at their mpp),
            // then one PNG announcing 900 megapixels.
            using (AsyncDuplexStreamingCall<ScoreBagRequest, ScoreBagResponse> bag = analysis.ScoreBag())
            {
                try
                {
                    for (int i = 0; i < 300; i++)
                    {
                        await bag.RequestStream.WriteAsync(new ScoreBagRequest { Mpp = 0.5, Patches = { new EncodedImage { Format = ImageFormat.Png, Data = Google.Protobuf.ByteString.CopyFrom(large) } } });
                    }

                    await bag.RequestStream.CompleteAsync();
                }
                catch (Exception e) when (e is RpcException or InvalidOperationException)
                {
                    // refused while still sending: the status comes with the response
                }

                RpcException refused = await Assert.ThrowsAsync<RpcException>(() => bag.ResponseStream.MoveNext(CancellationToken.None));
                Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
                Assert.Contains("takes 32x32 px patches", refused.Status.Detail, StringComparison.Ordinal);
            }

            using (AsyncDuplexStreamingCall<ScoreBagRequest, ScoreBagResponse> bomb = analysis.ScoreBag())
            {
                await bomb.RequestStream.WriteAsync(new ScoreBagRequest { Patches = { new EncodedImage { Format = ImageFormat.Png, Data = Google.Protobuf.ByteString.CopyFrom(huge) } } });
                RpcException error = await Assert.ThrowsAsync<RpcException>(() => bomb.ResponseStream.MoveNext(CancellationToken.None));
                Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
            }

            GetSlideInfoResponse info = await new SlideService.SlideServiceClient(channel).GetSlideInfoAsync(
                new GetSlideInfoRequest { Path = "CMU-1-Small-Region.svs" }, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10)));
            long peakKib = long.Parse(File.ReadLines($"/proc/{process.Id}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal))
                .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);

            Assert.Equal(2220, info.Width);
            Assert.InRange(peakKib / 1024, 0, 600); // the server's whole life: start, model, 300 decodes, the refused bomb
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            Directory.Delete(work, recursive: true);
        }
    }

    [Fact]
    public async Task Serve_PublicAddressWithoutToken_ExitsWithMessage()
    {
        ProcessResult result = await ExternalProcess.RunAsync("dotnet", [Executable, "serve", "--listen", "0.0.0.0:0"]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("--auth-token", result.StandardError, StringComparison.Ordinal);
    }

    private static async Task<string> WaitForAddressAsync(Process process)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var seen = new System.Text.StringBuilder();
        while (await process.StandardError.ReadLineAsync(timeout.Token) is { } line)
        {
            seen.AppendLine(line);
            Match match = ServingLine().Match(line);
            if (match.Success)
            {
                _ = DrainAsync(process.StandardError); // keep the pipe from filling
                return match.Groups["address"].Value;
            }
        }

        throw new InvalidOperationException($"slideplugin serve never reported its address:\n{seen}");
    }

    private static async Task DrainAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is not null)
        {
        }
    }
}
