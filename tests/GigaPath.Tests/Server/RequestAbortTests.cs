using System.Net;
using System.Text;
using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Server.Slide;
using NUnit.Framework;

namespace GigaPath.Tests.Server;

/// <summary>
/// A client that goes away stops its own work: the request's abort token reaches the batching queue and the forward
/// (the library checks it before each block or layer), and the requests behind it are served without waiting for it.
/// </summary>
public class RequestAbortTests
{
    private static byte[] Image(int seed) => Enumerable.Range(0, 12).Select(i => (byte)(seed * 5 + i)).ToArray();

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        for (int i = 0; i < 1500 && !condition(); i++) await Task.Delay(20);
        Assert.That(condition(), Is.True, what);
    }

    [Test]
    public async Task AnAbortedScoreRequestStopsItsForwardAndTheNextRequestIsServed()
    {
        var backend = new FakeTileBackend();
        var options = ServerHarness.Options(o => o with { BatchSize = 1, MaxBatchDelayMs = 1 });
        await using var h = await ServerHarness.StartAsync(options, _ => backend);
        backend.Gate.Reset();

        using var abort = new CancellationTokenSource();
        var aborted = h.Client.PostAsync("/score?features=cls",
            new StringContent(ServerHarness.ScoreBody([Image(1)]), Encoding.UTF8, "application/json"), abort.Token);
        Assert.That(await backend.Entered.WaitAsync(TimeSpan.FromSeconds(30)), Is.True, "the first request's forward started");
        var next = h.ScoreAsync([Image(2)]);
        await WaitForAsync(() => h.Server.Metrics.Render().Contains("gigapath_queue_depth 2\n"), "the second request waits behind the first");

        abort.Cancel();
        Assert.That(async () => await aborted, Throws.InstanceOf<OperationCanceledException>());
        // The gate is still shut: only the abort can have ended the first forward.
        await WaitForAsync(() => backend.Cancelled == 1, "the aborted request's forward was cancelled");
        Assert.That(await backend.Entered.WaitAsync(TimeSpan.FromSeconds(30)), Is.True, "the worker moved on to the second request");
        backend.Gate.Set();
        var features = await next;
        Assert.That(features[0], Is.EqualTo(FakeTileBackend.Expected(Image(2))));
        Assert.That((await h.ScoreAsync([Image(3)]))[0], Is.EqualTo(FakeTileBackend.Expected(Image(3))), "later requests succeed");

        Assert.That(backend.Batches, Is.EqualTo(new[] { 1, 1, 1 }));
        Assert.That(backend.Names[0].Single(), Does.StartWith("request ").And.EndWith(" row 0"), "tiles are named by request and row");
        Assert.That(backend.Names[0].Single(), Is.Not.EqualTo(backend.Names[1].Single()));
        await WaitForAsync(() => h.Server.Metrics.Render().Contains("gigapath_queue_depth 0\n"), "nothing is left queued");
    }

    [Test]
    public async Task ABatchSharedWithALiveRequestIsNotCancelledByAnotherRequestsAbort()
    {
        var backend = new FakeTileBackend();
        var options = ServerHarness.Options(o => o with { BatchSize = 8, MaxBatchDelayMs = 1000 });
        await using var h = await ServerHarness.StartAsync(options, _ => backend);
        backend.Gate.Reset();
        var blocker = h.ScoreAsync([Image(0)]);
        Assert.That(await backend.Entered.WaitAsync(TimeSpan.FromSeconds(30)), Is.True);

        // Two requests queue behind the busy worker and share the next batch; one of them goes away inside it.
        using var abort = new CancellationTokenSource();
        var aborted = h.Client.PostAsync("/score?features=cls",
            new StringContent(ServerHarness.ScoreBody([Image(1)]), Encoding.UTF8, "application/json"), abort.Token);
        var live = h.ScoreAsync([Image(2)]);
        await WaitForAsync(() => h.Server.Metrics.Render().Contains("gigapath_queue_depth 3\n"), "both queued");
        backend.Gate.Set();
        await blocker;
        backend.Gate.Reset();
        Assert.That(await backend.Entered.WaitAsync(TimeSpan.FromSeconds(30)), Is.True, "the shared batch started");
        abort.Cancel();
        Assert.That(async () => await aborted, Throws.InstanceOf<OperationCanceledException>());
        await Task.Delay(200);
        Assert.That(backend.Cancelled, Is.Zero, "the live request still needs the forward");
        backend.Gate.Set();
        Assert.That((await live)[0], Is.EqualTo(FakeTileBackend.Expected(Image(2))));
        Assert.That(backend.Batches, Is.EqualTo(new[] { 1, 2 }));
    }

    [Test]
    public async Task AnAbortedSlideRequestCancelsItsEncodingAndFreesTheEncoder()
    {
        var slide = new CancellableSlideBackend();
        var options = ServerHarness.Options(o => o with { SlideModelDir = FixturePaths.Get("slide_encoder_tiny"), SlideQueueCapacity = 1 });
        await using var h = await ServerHarness.StartAsync(options, _ => new FakeTileBackend(), _ => slide);
        const string body = "{\"tile_embeddings\": [[1, 2], [3, 4]], \"coords\": [[0, 0], [256, 0]]}";

        using var abort = new CancellationTokenSource();
        slide.Hold = true;
        var aborted = h.Client.PostAsync("/score/slide", new StringContent(body, Encoding.UTF8, "application/json"), abort.Token);
        Assert.That(await slide.Entered.WaitAsync(TimeSpan.FromSeconds(30)), Is.True, "the slide encoding started");
        abort.Cancel();
        Assert.That(async () => await aborted, Throws.InstanceOf<OperationCanceledException>());
        await WaitForAsync(() => slide.Cancelled == 1, "the encoding saw the abort");

        slide.Hold = false;
        using var response = await h.Client.PostAsync("/score/slide", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), text);
        Assert.That(text, Does.Contain("\"slide_embedding\":[2]"), "the next slide is encoded (two tiles)");
    }

    /// <summary>A slide backend whose encoding, while <see cref="Hold"/> is set, runs until its token is cancelled.</summary>
    private sealed class CancellableSlideBackend : ISlideEmbeddingBackend
    {
        private int _cancelled;

        public volatile bool Hold;
        public SemaphoreSlim Entered { get; } = new(0);
        public int Cancelled => Volatile.Read(ref _cancelled);
        public int InputDim => 2;
        public string Description => "cancellable";

        public async Task<SlideResult> EncodeAsync(TileFeatures tiles, SlidePooling pool, bool allLayers, double? level0TileSize, CancellationToken cancellationToken)
        {
            Entered.Release();
            if (Hold)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(30), cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    Interlocked.Increment(ref _cancelled);
                    throw;
                }
            }
            return new SlideResult([new NamedTensor("slide_embedding", [tiles.Count], [1])], []);
        }

        public void Dispose() { }
    }
}
