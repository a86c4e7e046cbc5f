using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using GigaPath.Server.Hosting;
using GigaPath.Server.Scoring;
using GigaPath.Tests.Cli;
using GigaPath.Tests.Server;
using NUnit.Framework;

namespace GigaPath.Tests.Reliability;

/// <summary>
/// Issue 25, the server's half: the bind guard checks what Kestrel bound (whatever configuration asked for it),
/// option values are checked at start, no response carries a file system path, and one memory budget admits
/// request bodies and decodes before they are read (503 + Retry-After when full, 413 when they could never fit).
/// </summary>
public class ServerExposureTests
{
    private static string Tiny => FixturePaths.Get("tile_encoder_tiny");

    [Test]
    public async Task AKestrelEndpointOnAllInterfacesWithoutAKeyStopsTheServer()
    {
        var environment = new Dictionary<string, string> { ["Kestrel__Endpoints__a__Url"] = "http://0.0.0.0:0" };
        using (var unkeyed = CliProcess.Start(environment, "serve", "--model", Tiny))
        {
            int code = await unkeyed.ExitCodeAsync(TimeSpan.FromSeconds(90));
            Assert.That(code, Is.EqualTo(2), unkeyed.Output);
            Assert.That(unkeyed.Output, Does.Contain("http://0.0.0.0:").And.Contain("not loopback").And.Contain("API key"));
            Assert.That(unkeyed.Output, Does.Not.Contain("not authenticated (loopback only)"));
            Assert.That(unkeyed.Output, Does.Not.Contain("   at "), "one line, no stack trace");
        }

        // With a key the same configuration serves (this test talks to it over loopback only).
        var dir = FixturePaths.TempDir("bind-guard");
        try
        {
            var keyFile = Path.Combine(dir, "key");
            File.WriteAllText(keyFile, "k3y\n");
            using var keyed = CliProcess.Start(environment, "serve", "--model", Tiny, "--api-key-file", keyFile);
            var line = await keyed.LineAsync(l => l.Contains("listening on", StringComparison.Ordinal)).WaitAsync(TimeSpan.FromSeconds(90));
            var port = System.Text.RegularExpressions.Regex.Match(line, @"http://0\.0\.0\.0:(\d+)").Groups[1].Value;
            Assert.That(port, Is.Not.Empty, line);
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            using var health = await client.GetAsync("/health");
            Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            keyed.Signal(CliProcess.SigTerm);
            Assert.That(await keyed.ExitCodeAsync(TimeSpan.FromSeconds(60)), Is.Zero, keyed.Output);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [TestCase("http://127.0.0.1:99999", "port 99999 is out of range")]
    [TestCase("http://[::ffff:127.0.0.1]:5000", "IPv4-mapped")]
    public void BadUrlsAreOneLineErrors(string url, string message)
    {
        var e = Assert.Throws<GigaPathException>(() => ServerHarness.Options(o => o with { Urls = new[] { url } }).Validate());
        Assert.That(e!.Message, Does.StartWith("--urls: '" + url + "'").And.Contain(message));
        Assert.That(GigaPath.Cli.Program.Main(new[] { "serve", "--model", Tiny, "--urls", url }), Is.EqualTo(2));
    }

    [Test]
    public void OptionRangesAreCheckedAtStart()
    {
        var cases = new (Func<ServerOptions, ServerOptions> Change, string Message)[]
        {
            (o => o with { MaxBodyBytes = 99_999_999_999_999 }, "--max-body-bytes: must be between 1 and 1,073,741,824"),
            (o => o with { MaxSlideBodyBytes = 99_999_999_999_999 }, "--max-slide-body-bytes: must be between 1 and"),
            (o => o with { MemoryBudgetBytes = 1000 }, "--memory-budget-bytes: must be between"),
            (o => o with { MemoryBudgetBytes = 100L << 20 }, "--max-image-pixels: decoding an image of 16,777,216 pixels"),
            (o => o with { MaxImagePixels = long.MaxValue }, "--max-image-pixels: must be between 1 and"),
        };
        foreach (var (change, message) in cases)
        {
            var e = Assert.Throws<GigaPathException>(() => ServerHarness.Options(change).Validate(), message);
            Assert.That(e!.Message, Does.StartWith(message));
        }
        Assert.That(GigaPath.Cli.Program.Main(new[] { "serve", "--model", Tiny, "--max-body-bytes", "99999999999999" }), Is.EqualTo(2));
    }

    /// <summary>
    /// Sends a request head by hand (HttpClient will not declare a length it does not send) and reads the answer (a
    /// chunked body comes back with its chunk sizes in it).
    /// </summary>
    private static async Task<(int Status, string Body, Dictionary<string, string> Headers)> RawAsync(Uri server, string head, TimeSpan timeout)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, server.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        return await ReadResponseAsync(stream, timeout);
    }

    private static async Task<(int Status, string Body, Dictionary<string, string> Headers)> ReadResponseAsync(NetworkStream stream, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        var received = new List<byte>();
        var buffer = new byte[4096];
        int headEnd = -1;
        int? length = null;
        while (true)
        {
            int n;
            try
            {
                n = await stream.ReadAsync(buffer, cancel.Token);
            }
            catch (IOException e)
            {
                throw new IOException($"after {received.Count} bytes: {Encoding.ASCII.GetString(received.ToArray())}", e);
            }
            if (n == 0) break;
            received.AddRange(buffer.AsSpan(0, n).ToArray());
            var text = Encoding.ASCII.GetString(received.ToArray());
            if (headEnd < 0 && (headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal)) >= 0)
            {
                var m = System.Text.RegularExpressions.Regex.Match(text[..headEnd], @"(?im)^content-length:\s*(\d+)");
                length = m.Success ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;
            }
            if (headEnd >= 0 && length is { } l && received.Count >= headEnd + 4 + l) break;
            if (headEnd >= 0 && length is null && text.EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal)) break; // chunked: the last chunk
        }
        var all = Encoding.UTF8.GetString(received.ToArray());
        var lines = all[..all.IndexOf("\r\n\r\n", StringComparison.Ordinal)].Split("\r\n");
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim().ToLowerInvariant(), p => p[1].Trim());
        return (int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), all[(all.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..], headers);
    }

    private static string Head(string path, long contentLength, string type = "application/json") =>
        $"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {type}\r\nContent-Length: {contentLength}\r\n\r\n";

    [Test]
    public async Task A3GBContentLengthIs413NotA500()
    {
        await using var h = await ServerHarness.StartAsync(ServerHarness.Options(o => o with { SlideModelDir = FixturePaths.Get("slide_encoder_tiny") }),
            TileEncoderBackend.Load, GigaPath.Server.Slide.SlideEncoderBackend.Load);
        foreach (var (path, option) in new[] { ("/score", "--max-body-bytes"), ("/score/slide", "--max-slide-body-bytes") })
        {
            var (status, body, _) = await RawAsync(h.Client.BaseAddress!, Head(path, 3_000_000_000), TimeSpan.FromSeconds(30));
            Assert.That(status, Is.EqualTo(413), path + ": " + body);
            Assert.That(body, Does.Contain(option), path);
        }
    }

    [Test]
    public async Task TheMemoryBudgetAdmitsBodiesAndDecodesBeforeReadingThem()
    {
        // A 64 MiB budget; decoding the 1024² image below takes 12 MiB.
        var options = ServerHarness.Options(o => o with
        {
            MemoryBudgetBytes = 64L << 20, MaxImagePixels = 1024 * 1024, MaxBodyBytes = 60L << 20, SlideModelDir = FixturePaths.Get("slide_encoder_tiny"),
        });
        await using var h = await ServerHarness.StartAsync(options, TileEncoderBackend.Load, GigaPath.Server.Slide.SlideEncoderBackend.Load);
        var image = HostileInputs.Png(1024, 1024);
        Assert.That(await h.ScoreAsync(new[] { image }), Has.Length.EqualTo(1), "fits while the server is idle");

        // A client declares a 56 MiB body and sends none of it: its reservation holds most of the budget.
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, h.Client.BaseAddress!.Port);
        await tcp.GetStream().WriteAsync(Encoding.ASCII.GetBytes(Head("/score", 56L << 20) + "{\"input"));
        for (int i = 0; i < 100 && await InUse(h) < (56L << 20); i++)
            await Task.Delay(50);
        Assert.That(await InUse(h), Is.GreaterThanOrEqualTo(56L << 20), "the body is reserved before it arrives");

        using (var refused = await h.PostScoreAsync(ServerHarness.ScoreBody(new[] { image })))
        {
            var text = await refused.Content.ReadAsStringAsync();
            var e = ServerHarness.ReadError(refused, text);
            Assert.That(e.Status, Is.EqualTo(503), text);
            Assert.That(e.Error, Does.Contain("row 0: decoding its 1024x1024 image").And.Contain("memory budget"));
            Assert.That(refused.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(1)));
        }

        // Another body that does not fit now is refused before it is read.
        var (status, body, headers) = await RawAsync(h.Client.BaseAddress!, Head("/score", 60L << 20), TimeSpan.FromSeconds(30));
        Assert.That(status, Is.EqualTo(503), body);
        Assert.That(body, Does.Contain("the request body needs 60 MiB"));
        Assert.That(headers["retry-after"], Is.EqualTo("1"));

        // A 7 MiB slide JSON fits the 8 MiB left, but its parsed values do not: refused while parsing, not after.
        var rows = string.Join(",", Enumerable.Repeat("[" + string.Join(",", Enumerable.Repeat("0.1234", 32)) + "]", 32_000));
        var coords = string.Join(",", Enumerable.Range(0, 32_000).Select(i => $"[{i % 200},{i / 200}]"));
        var json = $"{{\"tile_embeddings\": [{rows}], \"coords\": [{coords}]}}";
        Assert.That(json.Length, Is.InRange(6 << 20, 8 << 20));
        using (var slide = await h.Client.PostAsync("/score/slide", new StringContent(json, Encoding.UTF8, "application/json")))
        {
            var text = await slide.Content.ReadAsStringAsync();
            var e = ServerHarness.ReadError(slide, text);
            Assert.That(e.Status, Is.EqualTo(503), text);
            Assert.That(e.Error, Does.Contain("parsing \"tile_embeddings\" needs 1 MiB"));
        }

        tcp.Close();
        for (int i = 0; i < 100 && await InUse(h) > 0; i++)
            await Task.Delay(50);
        Assert.That(await InUse(h), Is.Zero, "the reservation is given back when the client goes away");
        Assert.That(await h.ScoreAsync(new[] { image }), Has.Length.EqualTo(1), "and the server admits again");
    }

    [Test]
    public void ALeaseOverTheWholeBudgetIs413AndOneThatDoesNotFitNowIs503()
    {
        var budget = new MemoryBudget(100);
        using var a = budget.Open();
        a.Grow(60, "first");
        using var b = budget.Open();
        var busy = Assert.Throws<GigaPath.Server.ApiException>(() => b.Grow(50, "second"));
        Assert.That(busy!.StatusCode, Is.EqualTo(503));
        Assert.That(busy.RetryAfterSeconds, Is.EqualTo(1));
        var never = Assert.Throws<GigaPath.Server.ApiException>(() => a.Grow(41, "first"));
        Assert.That(never!.StatusCode, Is.EqualTo(413));
        Assert.That(never.Message, Does.Contain("first").And.Contain("--memory-budget-bytes"));
        a.Dispose();
        b.Grow(50, "second");
        Assert.That(budget.InUse, Is.EqualTo(50));
        b.Shrink(20);
        Assert.That(budget.InUse, Is.EqualTo(30));
    }

    private static async Task<long> InUse(ServerHarness h)
    {
        var text = await h.Client.GetStringAsync("/metrics");
        var m = System.Text.RegularExpressions.Regex.Match(text, @"(?m)^gigapath_memory_budget_in_use_bytes (\d+)");
        return long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [Test]
    public async Task ReadyAndErrorBodiesCarryNoPaths()
    {
        var model = Path.GetFullPath(Tiny);
        await using (var h = await ServerHarness.StartAsync(ServerHarness.Options(), TileEncoderBackend.Load))
        {
            var ready = await h.Client.GetStringAsync("/ready");
            Assert.That(ready, Does.Not.Contain(model).And.Not.Contain(Path.GetDirectoryName(model)!));
            Assert.That(ready, Does.Contain("tile_encoder_tiny"), "the folder's name stays");
        }

        // A model that fails to load with its path in the message: /ready and /score say why, without the path.
        var failing = ServerHarness.Options();
        await using var broken = await ServerHarness.StartAsync(failing,
            _ => throw new GigaPathException($"{model}/model.safetensors: tensor 'cls_token' missing; also '/etc/passwd'"), waitReady: false);
        for (int i = 0; i < 100 && broken.Server.IsReady == false; i++)
        {
            using var r = await broken.Client.GetAsync("/ready");
            var text = await r.Content.ReadAsStringAsync();
            if (text.Contains("failed", StringComparison.Ordinal)) break;
            await Task.Delay(50);
        }
        foreach (var (path, body) in new[] { ("/ready", (string?)null), ("/score", ServerHarness.ScoreBody(new[] { new byte[] { 1 } })) })
        {
            using var r = body is null ? await broken.Client.GetAsync(path) : await broken.PostScoreAsync(body);
            var text = System.Text.RegularExpressions.Regex.Unescape(await r.Content.ReadAsStringAsync());
            Assert.That(text, Does.Contain("model.safetensors: tensor 'cls_token' missing"), path);
            Assert.That(text, Does.Not.Contain(model).And.Not.Contain("/etc/").And.Not.Contain(Path.GetTempPath()), path);
        }
    }

    [Test]
    public void ResponseTextDropsPathsButKeepsRoutes()
    {
        var tmp = Path.Combine(Path.GetTempPath(), "gigapath-slide-1.h5");
        Assert.That(ResponseText.WithoutPaths($"{tmp}: external link to '/etc/passwd' in \"{tmp}\""),
            Is.EqualTo("gigapath-slide-1.h5: external link to 'passwd' in \"gigapath-slide-1.h5\""));
        Assert.That(ResponseText.WithoutPaths("POST /score/slide needs application/json; see http://example.org/a/b"),
            Is.EqualTo("POST /score/slide needs application/json; see http://example.org/a/b"));
    }
}
