using System.Net;
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
        // TestEnvironment removed any GIGAPATH_API_KEY the caller set: with one, the non-loopback case would serve.
        Assert.That(Environment.GetEnvironmentVariable(GigaPath.Server.Hosting.ServerOptions.ApiKeyVariable), Is.Null);
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
        await using var server = await ServerProcess.StartAsync("--model", Tiny, "--api-key-file", keyFile);
        try
        {
            var client = server.Client;
            await server.WaitUntilReadyAsync();
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

            await server.StopAsync();
            Assert.That(server.Process.ExitCode, Is.Zero, server.Output);
            Assert.That(server.Output, Does.Contain("stopped"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
