using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Threading.Channels;
using GigaPath.Server.Metrics;
using GigaPath.Server.Scoring;
using Microsoft.Extensions.Logging;

namespace GigaPath.Server.Batching;

/// <summary>
/// Dynamic batching in front of one model instance: requests from any number of clients add their images to a
/// bounded queue; a single worker takes up to <c>batchSize</c> images (waiting at most <c>maxDelay</c> after the
/// first for more) and embeds them in one forward pass. Admission is all-or-nothing per request, so a request is
/// either queued whole or refused (the caller answers 503) and never half-embedded. Each batch goes through the
/// library's pack-and-encode step (<see cref="ITileEmbeddingBackend.Embed"/>, <c>TileEncoder.EmbedBatch</c>) with a
/// token that is cancelled once every request in the batch has gone away: an aborted request's images are dropped
/// while they wait, and a forward that only they needed stops within one block, so the worker moves on to others.
/// </summary>
internal sealed class EmbeddingQueue : IAsyncDisposable
{
    private sealed record WorkItem(float[] Pixels, string Name, TileOutput Output, TaskCompletionSource<float[]> Result, CancellationToken Cancel);

    private readonly ITileEmbeddingBackend _backend;
    private readonly int _batchSize;
    private readonly TimeSpan _maxDelay;
    private readonly ServerMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Channel<WorkItem> _channel;
    private readonly Task _worker;
    private int _pending;

    public int Capacity { get; }

    /// <summary>Images admitted and not yet answered (waiting or in the batch being embedded).</summary>
    public int Depth => Volatile.Read(ref _pending);

    public EmbeddingQueue(ITileEmbeddingBackend backend, int batchSize, TimeSpan maxDelay, int capacity, ServerMetrics metrics, ILogger logger)
    {
        _backend = backend;
        _batchSize = batchSize;
        _maxDelay = maxDelay;
        Capacity = capacity;
        _metrics = metrics;
        _logger = logger;
        // Admission (TryReserve) already bounds the content, so writes never wait; the bound is a second guard.
        _channel = Channel.CreateBounded<WorkItem>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _worker = Task.Run(RunAsync);
    }

    /// <summary>
    /// Queues all of <paramref name="pixels"/>, or none when they do not fit (returns false) or the queue is
    /// closed. The task yields one <paramref name="output"/> per image, in order; it is cancelled when
    /// <paramref name="cancel"/> (the request's abort) fires before its images are embedded.
    /// <paramref name="names"/> name each image in errors.
    /// </summary>
    public bool TryEnqueue(IReadOnlyList<float[]> pixels, IReadOnlyList<string> names, TileOutput output, CancellationToken cancel,
        [NotNullWhen(true)] out Task<float[][]>? result)
    {
        result = null;
        if (!TryReserve(pixels.Count)) return false;
        var tasks = new Task<float[]>[pixels.Count];
        for (int i = 0; i < pixels.Count; i++)
        {
            var tcs = new TaskCompletionSource<float[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_channel.Writer.TryWrite(new WorkItem(pixels[i], names[i], output, tcs, cancel)))
            {
                // Closed while we were queueing (shutdown): fail what we could not hand over.
                Interlocked.Add(ref _pending, -(pixels.Count - i));
                for (int j = i; j < pixels.Count; j++)
                {
                    var failed = new TaskCompletionSource<float[]>();
                    failed.SetException(new ApiException(503, "server is shutting down") { RetryAfterSeconds = 5 });
                    tasks[j] = failed.Task;
                }
                break;
            }
            tasks[i] = tcs.Task;
        }
        result = Task.WhenAll(tasks);
        return true;
    }

    private bool TryReserve(int count)
    {
        while (true)
        {
            int current = Volatile.Read(ref _pending);
            if (current + count > Capacity) return false;
            if (Interlocked.CompareExchange(ref _pending, current + count, current) == current) return true;
        }
    }

    private async Task RunAsync()
    {
        var reader = _channel.Reader;
        var batch = new List<WorkItem>(_batchSize);
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            if (!reader.TryRead(out var first)) continue;
            batch.Add(first);
            await FillAsync(reader, batch).ConfigureAwait(false);
            Process(batch);
        }
    }

    /// <summary>Adds queued images to <paramref name="batch"/> until it is full or <c>maxDelay</c> has passed since the first.</summary>
    private async Task FillAsync(ChannelReader<WorkItem> reader, List<WorkItem> batch)
    {
        var clock = Stopwatch.StartNew();
        while (batch.Count < _batchSize)
        {
            if (reader.TryRead(out var item))
            {
                batch.Add(item);
                continue;
            }
            var left = _maxDelay - clock.Elapsed;
            if (left <= TimeSpan.Zero) return;
            using var timeout = new CancellationTokenSource(left);
            try
            {
                if (!await reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false)) return;
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void Process(List<WorkItem> batch)
    {
        // Images of requests whose client went away are dropped here rather than embedded for nobody.
        var live = new List<WorkItem>(batch.Count);
        foreach (var item in batch)
        {
            if (item.Cancel.IsCancellationRequested) item.Result.TrySetCanceled(item.Cancel);
            else live.Add(item);
        }
        try
        {
            if (live.Count == 0) return;
            long start = Stopwatch.GetTimestamp();
            // One forward per kind of output asked for: the CLS-only forward skips the last block's patch rows.
            foreach (var group in live.GroupBy(i => i.Output))
            {
                var items = group.ToList();
                EmbedGroup(items, group.Key);
            }
            _metrics.RecordBatch(live.Count, Stopwatch.GetElapsedTime(start));
        }
        catch (Exception e)
        {
            _logger.LogError(e, "embedding a batch of {Count} images failed", live.Count);
            var error = new ApiException(500, $"inference failed: {e.Message}", inner: e);
            foreach (var item in live) item.Result.TrySetException(error);
        }
        finally
        {
            Interlocked.Add(ref _pending, -batch.Count);
        }
    }

    /// <summary>One forward for <paramref name="items"/>, stopped once all of their requests are aborted.</summary>
    private void EmbedGroup(List<WorkItem> items, TileOutput output)
    {
        using var abandoned = WhenAllCancelled(items.Select(i => i.Cancel).Distinct().ToList(), out var registrations);
        try
        {
            var outputs = _backend.Embed(items.Select(i => i.Pixels).ToList(), items.Select(i => i.Name).ToList(), output, abandoned.Token);
            if (outputs.Length != items.Count)
                throw new InvalidOperationException($"backend returned {outputs.Length} embeddings for {items.Count} images");
            for (int i = 0; i < items.Count; i++)
                items[i].Result.TrySetResult(outputs[i]);
        }
        catch (OperationCanceledException) when (abandoned.IsCancellationRequested)
        {
            _logger.LogInformation("stopped a forward of {Count} images: every request in it was aborted", items.Count);
            foreach (var item in items) item.Result.TrySetCanceled(item.Cancel);
        }
        finally
        {
            foreach (var r in registrations) r.Dispose();
        }
    }

    /// <summary>A source cancelled once every one of <paramref name="tokens"/> is (never, if one cannot be).</summary>
    private static CancellationTokenSource WhenAllCancelled(IReadOnlyList<CancellationToken> tokens, out List<CancellationTokenRegistration> registrations)
    {
        var source = new CancellationTokenSource();
        registrations = new List<CancellationTokenRegistration>(tokens.Count);
        if (tokens.Count == 0 || tokens.Any(t => !t.CanBeCanceled)) return source;
        int remaining = tokens.Count;
        foreach (var token in tokens)
            registrations.Add(token.Register(() =>
            {
                if (Interlocked.Decrement(ref remaining) == 0) source.Cancel();
            }));
        return source;
    }

    /// <summary>Stops admitting, embeds everything already queued, then returns.</summary>
    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        await _worker.ConfigureAwait(false);
    }
}
