using System.Net;
using System.Text;
using GigaPath.Server.Hosting;
using NUnit.Framework;

namespace GigaPath.Tests.Server;

/// <summary>Malformed requests and authentication: each gets a JSON error and a 4xx, and the server keeps serving.</summary>
public class RequestValidationTests
{
    private static readonly byte[] Image = { 1, 2, 3, 4 };

    private static async Task<(int Status, string? Error, int? Row)> PostAsync(ServerHarness h, string body, string? key = null)
    {
        using var response = await h.PostScoreAsync(body, key);
        var text = await response.Content.ReadAsStringAsync();
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/json"), text);
        return ServerHarness.ReadError(response, text);
    }

    private static string Body(string columns, string index, string data) =>
        $"{{\"input_data\": {{\"columns\": {columns}, \"index\": {index}, \"data\": {data}}}}}";

    [Test]
    public async Task StructuralErrorsAre400WithAMessage()
    {
        await using var h = await ServerHarness.StartAsync(ServerHarness.Options(), _ => new FakeTileBackend());
        var b64 = Convert.ToBase64String(Image);
        var cases = new (string Body, int Status, string Message, int? Row)[]
        {
            ("{\"input_data\": ", 400, "not valid JSON", null),
            ("[1, 2]", 400, "\"input_data\"", null),
            ("{\"inputs\": {}}", 400, "\"input_data\"", null),
            (Body("[\"img\"]", "[0]", $"[[\"{b64}\"]]"), 400, "columns must be [\"image\"]", null),
            (Body("[\"image\", \"text\"]", "[0]", $"[[\"{b64}\", \"x\"]]"), 400, "columns must be [\"image\"]", null),
            ("{\"input_data\": {\"index\": [0], \"data\": [[\"a\"]]}}", 400, "columns is missing", null),
            (Body("[\"image\"]", "[0, 1]", $"[[\"{b64}\"]]"), 400, "index has 2 entries but input_data.data has 1 rows", null),
            (Body("[\"image\"]", "[]", "[]"), 400, "no rows", null),
            (Body("[\"image\"]", "[0, 1]", $"[[\"{b64}\"], \"{b64}\"]"), 400, "data[1] must be a one-element array", 1),
            (Body("[\"image\"]", "[0, 1]", $"[[\"{b64}\"], [42]]"), 400, "data[1] must be", 1),
            (Body("[\"image\"]", "[0, 1, 2]", $"[[\"{b64}\"], [\"{b64}\"], [\"not base64!\"]]"), 400, "row 2: image is not valid base64", 2),
            (Body("[\"image\"]", "[0]", "[[\"\"]]"), 400, "row 0: the image is empty", 0),
        };
        foreach (var (body, status, message, row) in cases)
        {
            var error = await PostAsync(h, body);
            Assert.That(error.Status, Is.EqualTo(status), body);
            Assert.That(error.Error, Does.Contain(message), body);
            Assert.That(error.Row, Is.EqualTo(row), body);
        }
        Assert.That(await h.ScoreAsync(new[] { Image }), Has.Length.EqualTo(1), "still serving");
    }

    [Test]
    public async Task TooManyImagesIs413()
    {
        await using var h = await ServerHarness.StartAsync(ServerHarness.Options(o => o with { MaxImagesPerRequest = 3 }), _ => new FakeTileBackend());
        var error = await PostAsync(h, ServerHarness.ScoreBody(Enumerable.Repeat(Image, 4)));
        Assert.That(error.Status, Is.EqualTo(413));
        Assert.That(error.Error, Does.Contain("4 rows; at most 3"));
        Assert.That(await h.ScoreAsync(Enumerable.Repeat(Image, 3)), Has.Length.EqualTo(3));
    }

    [Test]
    public async Task BodyOverTheLimitIs413()
    {
        await using var h = await ServerHarness.StartAsync(ServerHarness.Options(o => o with { MaxBodyBytes = 4096 }), _ => new FakeTileBackend());
        var big = ServerHarness.ScoreBody(new[] { new byte[8192] });
        var error = await PostAsync(h, big);
        Assert.That(error.Status, Is.EqualTo(413));
        Assert.That(error.Error, Does.Contain("larger than 4096 bytes"));

        // Without a Content-Length (chunked upload) the limit is enforced while reading.
        var request = new HttpRequestMessage(HttpMethod.Post, "/score") { Content = new StreamContent(new ChunkedOnly(Encoding.UTF8.GetBytes(big))) };
        request.Headers.TransferEncodingChunked = true;
        using var response = await h.Client.SendAsync(request);
        Assert.That((int)response.StatusCode, Is.EqualTo(413));
        Assert.That(await h.ScoreAsync(new[] { Image }), Has.Length.EqualTo(1));
    }

    [Test]
    public async Task KeyIsRequiredWhenConfigured()
    {
        await using var h = await ServerHarness.StartAsync(ServerHarness.Options(o => o with { ApiKey = "s3cret-key" }), _ => new FakeTileBackend());
        var body = ServerHarness.ScoreBody(new[] { Image });
        foreach (var key in new[] { null, "wrong", "s3cret-ke", "s3cret-key2" })
        {
            using var response = await h.PostScoreAsync(body, key);
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), key ?? "no key");
            Assert.That(response.Headers.WwwAuthenticate.ToString(), Is.EqualTo("Bearer"));
            Assert.That(await response.Content.ReadAsStringAsync(), Does.Contain("API key"));
        }
        var basic = new HttpRequestMessage(HttpMethod.Post, "/score") { Content = new StringContent(body) };
        basic.Headers.TryAddWithoutValidation("Authorization", "Basic s3cret-key");
        using (var response = await h.Client.SendAsync(basic))
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), "only the Bearer scheme");

        Assert.That(await h.ScoreAsync(new[] { Image }, "s3cret-key"), Has.Length.EqualTo(1));
        using (var health = await h.Client.GetAsync("/health"))
            Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.OK), "probes need no key");
        Assert.That(h.Server.Metrics.RequestCount("score", 401), Is.EqualTo(5));
    }

    [Test]
    public void NonLoopbackNeedsAKey()
    {
        foreach (var url in new[] { "http://0.0.0.0:5000", "http://*:5000", "http://+:5000", "http://192.168.1.20:5000", "http://[::]:5000", "http://example.org:80" })
        {
            var options = ServerHarness.Options(o => o with { Urls = new[] { url } });
            var e = Assert.Throws<GigaPathException>(options.Validate, url);
            Assert.That(e!.Message, Does.Contain("not a loopback address").And.Contain("API key"), url);
            Assert.DoesNotThrow(() => (options with { ApiKey = "k" }).Validate(), url);
        }
        foreach (var url in new[] { "http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:5000", "http://127.0.0.2:0" })
            Assert.That(ServerOptions.IsLoopback(url), Is.True, url);
        var https = Assert.Throws<GigaPathException>(() => ServerOptions.IsLoopback("https://127.0.0.1:5000"));
        Assert.That(https!.Message, Does.Contain("only http"));
    }

    [Test]
    public void OptionsAreValidated()
    {
        var cases = new (Func<ServerOptions, ServerOptions> Change, string Message)[]
        {
            (o => o with { ModelDir = "/no/such/model" }, "--model: folder '/no/such/model' not found"),
            (o => o with { BatchSize = 0 }, "--batch-size"),
            (o => o with { MaxImagesPerRequest = 500, QueueCapacity = 100 }, "exceeds --queue-capacity"),
            (o => o with { MaxBatchDelayMs = -1 }, "--max-batch-delay-ms"),
            (o => o with { MaxImagePixels = 0 }, "--max-image-pixels"),
            (o => o with { ApiKey = "has space" }, "API key"),
            (o => o with { SlideModelDir = "/no/such/slide" }, "--slide-model"),
        };
        foreach (var (change, message) in cases)
        {
            var e = Assert.Throws<GigaPathException>(ServerHarness.Options(change).Validate);
            Assert.That(e!.Message, Does.Contain(message));
        }
    }

    [Test]
    public async Task UnknownPathsAndMethods()
    {
        await using var h = await ServerHarness.StartAsync(ServerHarness.Options(), _ => new FakeTileBackend());
        using (var r = await h.Client.GetAsync("/score")) Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.MethodNotAllowed));
        using (var r = await h.Client.GetAsync("/nope")) Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        using (var r = await h.PostScoreAsync("{}", path: "/score/slide"))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
            Assert.That(await r.Content.ReadAsStringAsync(), Does.Contain("--slide-model"));
        }
        using (var r = await h.Client.GetAsync("/")) Assert.That(await r.Content.ReadAsStringAsync(), Is.EqualTo("Healthy"));
    }

    /// <summary>A stream of unknown length, so HttpClient must send it chunked.</summary>
    private sealed class ChunkedOnly : MemoryStream
    {
        public ChunkedOnly(byte[] data) : base(data) { }
        public override bool CanSeek => false;
    }
}
