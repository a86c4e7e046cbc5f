using System.Net;
using System.Text.Json;
using GigaPath.Server.Hosting;
using NUnit.Framework;

namespace GigaPath.Tests.Server;

/// <summary>Batching, back-pressure, readiness and shutdown, over real HTTP with a model-free backend.</summary>
public class QueueAndLifecycleTests
{
    private static byte[] Image(int seed, int length = 10) =>
        Enumerable.Range(0, length).Select(i => (byte)(seed * 7 + i)).ToArray();

    [Test]
    public async Task AnswersOneTorchTensorPerRowInOrder()
    {
        await using var h = await ServerHarness.StartAsync(ServerHarness.Options(), _ => new FakeTileBackend());
        var images = Enumerable.Range(0, 5).Select(i => Image(i, 10 + i)).ToList();
        var features = await h.ScoreAsync(images);
        Assert.That(features, Has.Length.EqualTo(5));
        for (int i = 0; i < 5; i++)
            Assert.That(features[i], Is.EqualTo(FakeTileBackend.Expected(images[i])), $"row {i}");
    }

    [Test]
    public async Task FormatJsonAnswersPlainFloatsThatRoundTripExactly()
    {
        await using var h = await ServerHarness.StartAsync(ServerHarness.Options(), _ => new FakeTileBackend());
        var images = new[] { Image(1, 1000), Image(2, 3) };
        var body = ServerHarness.ScoreBody(images);
        foreach (var (path, accept) in new[] { ("/score?format=json&features=cls", null), ("/score?features=cls", "application/json; format=floats") })
        {
            var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body) };
            if (accept is not null) request.Headers.TryAddWithoutValidation("Accept", accept);
            using var response = await h.Client.SendAsync(request);
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var rows = doc.RootElement.EnumerateArray().Select(r => r.GetProperty("image_features").EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
            Assert.That(rows[0], Is.EqualTo(FakeTileBackend.Expected(images[0])), path);
            Assert.That(rows[1], Is.EqualTo(FakeTileBackend.Expected(images[1])), path);
        }
        using var bad = await h.PostScoreAsync(body, path: "/score?format=xml");
        Assert.That(bad.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
    }

    [Test]
    public async Task OverfullQueueAnswers503WithRetryAfterAndRecovers()
    {
        var backend = new FakeTileBackend();
        var options = ServerHarness.Options(o => o with { QueueCapacity = 2, MaxImagesPerRequest = 2, BatchSize = 2 });
        await using var h = await ServerHarness.StartAsync(options, _ => backend);
        backend.Gate.Reset();
        var first = h.ScoreAsync(new[] { Image(1), Image(2) });
        Assert.That(await backend.Entered.WaitAsync(TimeSpan.FromSeconds(30)), Is.True, "worker took the first request");

        // Both slots are held by the request being embedded: anything more is refused at once, never queued.
        for (int i = 0; i < 3; i++)
        {
            using var refused = await h.PostScoreAsync(ServerHarness.ScoreBody(new[] { Image(3) }));
            var text = await refused.Content.ReadAsStringAsync();
            Assert.That(refused.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable), text);
            Assert.That(refused.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(1)));
            Assert.That(ServerHarness.ReadError(refused, text).Error, Does.Contain("busy"));
        }
        using (var health = await h.Client.GetAsync("/health"))
            Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.OK), "probes answer while the queue is full");
        using (var metrics = await h.Client.GetAsync("/metrics"))
            Assert.That(await metrics.Content.ReadAsStringAsync(), Does.Contain("gigapath_queue_depth 2\n"));

        backend.Gate.Set();
        Assert.That((await first).Length, Is.EqualTo(2));
        Assert.That(await h.ScoreAsync(new[] { Image(3) }), Has.Length.EqualTo(1), "accepted again once the queue drained");
        Assert.That(h.Server.Metrics.RequestCount("score", 503), Is.EqualTo(3));
    }

    [Test]
    public async Task RequestsFromManyClientsShareBatches()
    {
        var backend = new FakeTileBackend();
        var options = ServerHarness.Options(o => o with { BatchSize = 8, MaxBatchDelayMs = 1000 });
        await using var h = await ServerHarness.StartAsync(options, _ => backend);
        backend.Gate.Reset();
        var blocker = h.ScoreAsync(new[] { Image(0) });
        Assert.That(await backend.Entered.WaitAsync(TimeSpan.FromSeconds(30)), Is.True);
        // While the worker is busy, 8 clients queue one image each; the next batch must take all 8.
        var images = Enumerable.Range(1, 8).Select(i => Image(i)).ToList();
        var requests = images.Select(i => h.ScoreAsync(new[] { i })).ToList();
        for (int spin = 0; spin < 1500 && !h.Server.Metrics.Render().Contains("gigapath_queue_depth 9\n"); spin++)
            await Task.Delay(20);
        Assert.That(h.Server.Metrics.Render(), Does.Contain("gigapath_queue_depth 9\n"), "all eight queued behind the busy worker");
        backend.Gate.Set();
        await blocker;
        var results = await Task.WhenAll(requests);
        for (int i = 0; i < 8; i++)
            Assert.That(results[i][0], Is.EqualTo(FakeTileBackend.Expected(images[i])));
        Assert.That(backend.Batches, Is.EqualTo(new[] { 1, 8 }));
        var metrics = h.Server.Metrics.Render();
        Assert.That(metrics, Does.Contain("gigapath_batch_size_bucket{le=\"8\"} 2\n"));
        Assert.That(metrics, Does.Contain("gigapath_batch_size_bucket{le=\"4\"} 1\n"));
        Assert.That(metrics, Does.Contain("gigapath_images_total 9\n"));
    }

    [Test]
    public async Task BatchingOffEmbedsOneImageAtATime()
    {
        var backend = new FakeTileBackend();
        await using var h = await ServerHarness.StartAsync(ServerHarness.Options(o => o with { BatchSize = 1 }), _ => backend);
        var features = await h.ScoreAsync(Enumerable.Range(0, 4).Select(i => Image(i)));
        Assert.That(features, Has.Length.EqualTo(4));
        Assert.That(backend.Batches, Is.EqualTo(new[] { 1, 1, 1, 1 }));
    }

    [Test]
    public async Task NotReadyWhileTheModelLoads()
    {
        using var release = new ManualResetEventSlim(false);
        var backend = new FakeTileBackend();
        await using var h = await ServerHarness.StartAsync(ServerHarness.Options(), _ =>
        {
            release.Wait(TimeSpan.FromSeconds(30));
            return backend;
        }, waitReady: false);

        using (var health = await h.Client.GetAsync("/health"))
            Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.OK), "liveness answers during the load");
        using (var ready = await h.Client.GetAsync("/ready"))
        {
            Assert.That(ready.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
            Assert.That(await ready.Content.ReadAsStringAsync(), Does.Contain("\"loading\""));
        }
        using (var score = await h.PostScoreAsync(ServerHarness.ScoreBody(new[] { Image(1) })))
        {
            Assert.That(score.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
            Assert.That(score.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(5)));
        }

        release.Set();
        await h.Server.WaitUntilReadyAsync().WaitAsync(TimeSpan.FromSeconds(30));
        using (var ready = await h.Client.GetAsync("/ready"))
        {
            Assert.That(ready.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            using var doc = JsonDocument.Parse(await ready.Content.ReadAsStringAsync());
            Assert.That(doc.RootElement.GetProperty("dim").GetInt32(), Is.EqualTo(FakeTileBackend.EmbeddingDim));
        }
        Assert.That(await h.ScoreAsync(new[] { Image(1) }), Has.Length.EqualTo(1));
    }

    [Test]
    public async Task AModelThatFailsToLoadStopsTheServerWithItsError()
    {
        var server = new ScoringServer(ServerHarness.Options(), _ => throw new GigaPathException("model.safetensors: tensor 'cls_token' missing"), logging: _ => { });
        var run = server.RunAsync(CancellationToken.None);
        var e = await Assert.ThrowsAsync<GigaPathException>(async () => await run.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.That(e!.Message, Does.Contain("cls_token"));
    }

    [Test]
    public async Task AFailingBatchAnswers500AndTheServerCarriesOn()
    {
        var backend = new FakeTileBackend { FailNext = new InvalidOperationException("simulated failure") };
        await using var h = await ServerHarness.StartAsync(ServerHarness.Options(), _ => backend);
        using (var failed = await h.PostScoreAsync(ServerHarness.ScoreBody(new[] { Image(1) })))
        {
            var text = await failed.Content.ReadAsStringAsync();
            Assert.That(failed.StatusCode, Is.EqualTo(HttpStatusCode.InternalServerError));
            Assert.That(ServerHarness.ReadError(failed, text).Error, Does.Contain("simulated failure"));
        }
        Assert.That(await h.ScoreAsync(new[] { Image(1) }), Has.Length.EqualTo(1));
    }

    [Test]
    public async Task StopFinishesRequestsInFlight()
    {
        var backend = new FakeTileBackend();
        var h = await ServerHarness.StartAsync(ServerHarness.Options(), _ => backend);
        try
        {
            backend.Gate.Reset();
            var inFlight = h.ScoreAsync(new[] { Image(1), Image(2) });
            Assert.That(await backend.Entered.WaitAsync(TimeSpan.FromSeconds(30)), Is.True);
            var stop = h.Server.StopAsync();
            // Stopping begins by closing the listener: once a new connection is refused, stop is under way, and it
            // must still be waiting for the request held in the backend.
            Assert.That(await RefusesNewConnectionsAsync(h.Client.BaseAddress!, TimeSpan.FromSeconds(60)), Is.True, "stopped listening");
            Assert.That(stop.IsCompleted, Is.False, "stop waits for the request being embedded");
            Assert.That(backend.Disposed, Is.False, "the model is kept while a request is in flight");
            backend.Gate.Set();
            var features = await inFlight.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.That(features[1], Is.EqualTo(FakeTileBackend.Expected(Image(2))));
            await stop.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.That(backend.Disposed, Is.True, "the model is released after the queue drained");
            await Assert.ThrowsAsync<HttpRequestException>(async () => await h.Client.GetAsync("/health"), "no longer listening");
        }
        finally
        {
            backend.Gate.Set();
            await h.DisposeAsync();
        }
    }

    /// <summary>Polls with fresh connections until one is refused (true) or <paramref name="timeout"/> passes (false).</summary>
    private static async Task<bool> RefusesNewConnectionsAsync(Uri address, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            using var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(10) };
            try
            {
                using var r = await client.GetAsync("/health");
            }
            catch (HttpRequestException)
            {
                return true;
            }
            await Task.Delay(10);
        }
        return false;
    }

    [Test]
    public async Task MetricsReportRequestsLatencyAndReadiness()
    {
        await using var h = await ServerHarness.StartAsync(ServerHarness.Options(), _ => new FakeTileBackend());
        for (int i = 0; i < 3; i++) await h.ScoreAsync(new[] { Image(i) });
        using (await h.PostScoreAsync("{")) { }
        using var response = await h.Client.GetAsync("/metrics");
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/plain"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.That(text, Does.Contain("gigapath_requests_total{endpoint=\"score\",status=\"200\"} 3\n"));
        Assert.That(text, Does.Contain("gigapath_requests_total{endpoint=\"score\",status=\"400\"} 1\n"));
        Assert.That(text, Does.Contain("gigapath_request_duration_seconds{endpoint=\"score\",quantile=\"0.5\"} "));
        Assert.That(text, Does.Contain("gigapath_request_duration_seconds{endpoint=\"score\",quantile=\"0.99\"} "));
        Assert.That(text, Does.Contain("gigapath_request_duration_seconds_count{endpoint=\"score\"} 3\n"));
        Assert.That(text, Does.Contain("gigapath_model_ready 1\n"));
        Assert.That(text, Does.Contain("# TYPE gigapath_batch_size histogram\n"));
    }
}
