using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using GigaPath.Cli.Commands;
using NUnit.Framework;

namespace GigaPath.Tests.Server;

/// <summary><c>gigapath serve</c>: option errors exit 2 before binding; a real process serves and stops on SIGTERM.</summary>
public class ServeCommandTests
{
    private static string Tiny => FixturePaths.Get("tile_encoder_tiny");

    [Test]
    public void RefusesBadOptionsWithExitCode2()
    {
        Assert.That(Environment.GetEnvironmentVariable("GIGAPATH_API_KEY"), Is.Null.Or.Empty, "test needs no key in the environment");
        Assert.That(GigaPath.Cli.Program.Main(new[] { "serve", "--model", "/no/such/model" }), Is.EqualTo(2));
        Assert.That(GigaPath.Cli.Program.Main(new[] { "serve", "--model", Tiny, "--urls", "http://0.0.0.0:0" }), Is.EqualTo(2), "non-loopback without a key");
        Assert.That(GigaPath.Cli.Program.Main(new[] { "serve", "--model", Tiny, "--api-key-file", "/no/such/key" }), Is.EqualTo(2));
        Assert.That(GigaPath.Cli.Program.Main(new[] { "serve", "--model", Tiny, "--batch-size", "0" }), Is.EqualTo(2));
        Assert.That(GigaPath.Cli.Program.Main(new[] { "serve", "--model", Tiny, "--device", "tpu" }), Is.EqualTo(2));
        Assert.That(GigaPath.Cli.Program.Main(new[] { "serve", "--model", Tiny, "--dtype", "float16" }), Is.EqualTo(2), "no fp16 on CPU");
    }

    [Test]
    public void UrlsMaySeparateWithSemicolons()
    {
        Assert.That(ServeCommand.SplitUrls(new[] { "http://127.0.0.1:1;http://[::1]:2", "http://localhost:3" }),
            Is.EqualTo(new[] { "http://127.0.0.1:1", "http://[::1]:2", "http://localhost:3" }));
        Assert.That(ServeCommand.SplitUrls(null), Is.EqualTo(new[] { "http://127.0.0.1:5000" }));
    }

    [Test]
    public async Task ServesWithAKeyFileAndStopsCleanlyOnSigterm()
    {
        var dir = FixturePaths.TempDir();
        var keyFile = Path.Combine(dir, "key.txt");
        File.WriteAllText(keyFile, "cli-key\n");
        var cli = Path.Combine(AppContext.BaseDirectory, "GigaPath.Cli.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { cli, "serve", "--model", Tiny, "--urls", "http://127.0.0.1:0", "--api-key-file", keyFile })
            psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var output = new System.Text.StringBuilder();
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (output) output.AppendLine(line);
            var m = Regex.Match(line, @"listening on (http://127\.0\.0\.1:\d+)");
            if (m.Success) listening.TrySetResult(m.Groups[1].Value);
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var url = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
            using var client = new HttpClient { BaseAddress = new Uri(url) };
            for (int i = 0; i < 300; i++)
            {
                using var ready = await client.GetAsync("/ready");
                if (ready.StatusCode == HttpStatusCode.OK) break;
                await Task.Delay(100);
            }
            var body = ServerHarness.ScoreBody(new[] { File.ReadAllBytes(FixturePaths.Get("preprocess", "prov_normal_000_1.png")) });
            using (var noKey = await client.PostAsync("/score", new StringContent(body)))
                Assert.That(noKey.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            var request = new HttpRequestMessage(HttpMethod.Post, "/score") { Content = new StringContent(body) };
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "cli-key");
            using (var ok = await client.SendAsync(request))
            {
                var text = await ok.Content.ReadAsStringAsync();
                Assert.That(ok.StatusCode, Is.EqualTo(HttpStatusCode.OK), text);
                Assert.That(ServerHarness.DecodeTorchTensors(text)[0].Shape, Is.EqualTo(new long[] { 1, 48, 14, 14 }), "the default answer is the patch-token map");
            }

            using (var kill = Process.Start("kill", new[] { "-TERM", process.Id.ToString() }))
                await kill.WaitForExitAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.That(process.ExitCode, Is.Zero, output.ToString());
            Assert.That(output.ToString(), Does.Contain("stopped"));
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            Directory.Delete(dir, true);
        }
    }
}
