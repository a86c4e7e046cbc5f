using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace GigaPath.Server.Metrics;

/// <summary>
/// Counters behind <c>GET /metrics</c> in the Prometheus text format: requests by endpoint and status, images
/// embedded, the batch-size histogram, latency quantiles over a sliding window, queue depth and readiness.
/// </summary>
public sealed class ServerMetrics
{
    private static readonly double[] Quantiles = { 0.5, 0.9, 0.99 };
    private static readonly int[] BatchBuckets = { 1, 2, 4, 8, 16, 32, 64, 128, 256 };

    private readonly ConcurrentDictionary<(string Endpoint, int Status), long> _requests = new();
    private readonly ConcurrentDictionary<string, LatencyWindow> _latency = new();
    private readonly ConcurrentDictionary<string, (double Sum, long Count)> _latencyTotals = new();
    private readonly long[] _batchBucketCounts = new long[BatchBuckets.Length + 1];
    private readonly object _batchLock = new();
    private long _batchCount;
    private long _batchSum;
    private long _images;
    private long _slides;
    private long _inferenceTicks;
    private long _preprocessTicks;

    /// <summary>Reads the current queue depth and capacity (0, 0 until the model is loaded).</summary>
    internal Func<(int Depth, int Capacity)> Queue { get; set; } = () => (0, 0);

    internal Func<bool> Ready { get; set; } = () => false;

    /// <summary>Reads the number of slide requests running or waiting (0 without a slide encoder).</summary>
    internal Func<int> SlideQueue { get; set; } = () => 0;

    /// <summary>Reads the memory budget's bytes in use and its capacity.</summary>
    internal Func<(long InUse, long Capacity)> Memory { get; set; } = () => (0, 0);

    public long ImagesEmbedded => Interlocked.Read(ref _images);

    public long RequestCount(string endpoint, int status) => _requests.TryGetValue((endpoint, status), out var n) ? n : 0;

    /// <summary>Counts one answered request; <paramref name="seconds"/> feeds the latency window of scoring endpoints.</summary>
    public void RecordRequest(string endpoint, int status, double? seconds)
    {
        _requests.AddOrUpdate((endpoint, status), 1, (_, n) => n + 1);
        if (seconds is { } s)
        {
            _latency.GetOrAdd(endpoint, _ => new LatencyWindow(TimeSpan.FromMinutes(1), 4096)).Add(s);
            _latencyTotals.AddOrUpdate(endpoint, (s, 1), (_, t) => (t.Sum + s, t.Count + 1));
        }
    }

    public void RecordBatch(int size, TimeSpan inference)
    {
        Interlocked.Add(ref _images, size);
        Interlocked.Add(ref _inferenceTicks, inference.Ticks);
        lock (_batchLock)
        {
            _batchCount++;
            _batchSum += size;
            int i = 0;
            while (i < BatchBuckets.Length && size > BatchBuckets[i]) i++;
            _batchBucketCounts[i]++;
        }
    }

    /// <summary>Time spent decoding and preprocessing images on request threads.</summary>
    public void RecordPreprocess(TimeSpan elapsed) => Interlocked.Add(ref _preprocessTicks, elapsed.Ticks);

    public void RecordSlide() => Interlocked.Increment(ref _slides);

    public string Render()
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;

        Header(sb, "gigapath_requests_total", "counter", "HTTP requests answered, by endpoint and status.");
        foreach (var ((endpoint, status), n) in _requests.OrderBy(kv => kv.Key.Endpoint, StringComparer.Ordinal).ThenBy(kv => kv.Key.Status))
            sb.Append(inv, $"gigapath_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}\n");

        Header(sb, "gigapath_images_total", "counter", "Tile images embedded.");
        sb.Append(inv, $"gigapath_images_total {ImagesEmbedded}\n");

        Header(sb, "gigapath_inference_seconds_total", "counter", "Time the tile encoder spent in forward passes.");
        sb.Append(inv, $"gigapath_inference_seconds_total {TimeSpan.FromTicks(Interlocked.Read(ref _inferenceTicks)).TotalSeconds:R}\n");

        Header(sb, "gigapath_preprocess_seconds_total", "counter", "Time spent decoding and preprocessing images (summed over request threads).");
        sb.Append(inv, $"gigapath_preprocess_seconds_total {TimeSpan.FromTicks(Interlocked.Read(ref _preprocessTicks)).TotalSeconds:R}\n");

        Header(sb, "gigapath_slides_total", "counter", "Slides encoded.");
        sb.Append(inv, $"gigapath_slides_total {Interlocked.Read(ref _slides)}\n");

        Header(sb, "gigapath_batch_size", "histogram", "Images per forward pass of the tile encoder.");
        lock (_batchLock)
        {
            long cumulative = 0;
            for (int i = 0; i < BatchBuckets.Length; i++)
            {
                cumulative += _batchBucketCounts[i];
                sb.Append(inv, $"gigapath_batch_size_bucket{{le=\"{BatchBuckets[i]}\"}} {cumulative}\n");
            }
            cumulative += _batchBucketCounts[^1];
            sb.Append(inv, $"gigapath_batch_size_bucket{{le=\"+Inf\"}} {cumulative}\n");
            sb.Append(inv, $"gigapath_batch_size_sum {_batchSum}\n");
            sb.Append(inv, $"gigapath_batch_size_count {_batchCount}\n");
        }

        Header(sb, "gigapath_request_duration_seconds", "summary", "Scoring latency; quantiles over the last minute (at most 4096 requests).");
        foreach (var (endpoint, window) in _latency.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var values = window.Quantiles(Quantiles);
            for (int i = 0; i < values.Length; i++)
                sb.Append(inv, $"gigapath_request_duration_seconds{{endpoint=\"{endpoint}\",quantile=\"{Quantiles[i]}\"}} {values[i]:R}\n");
            var (sum, count) = _latencyTotals[endpoint];
            sb.Append(inv, $"gigapath_request_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {sum:R}\n");
            sb.Append(inv, $"gigapath_request_duration_seconds_count{{endpoint=\"{endpoint}\"}} {count}\n");
        }

        var (depth, capacity) = Queue();
        Header(sb, "gigapath_queue_depth", "gauge", "Images admitted and not yet answered.");
        sb.Append(inv, $"gigapath_queue_depth {depth}\n");
        Header(sb, "gigapath_queue_capacity", "gauge", "Images that may be admitted at once.");
        sb.Append(inv, $"gigapath_queue_capacity {capacity}\n");
        Header(sb, "gigapath_slide_queue_depth", "gauge", "Slide requests being encoded or waiting.");
        sb.Append(inv, $"gigapath_slide_queue_depth {SlideQueue()}\n");
        var (inUse, budget) = Memory();
        Header(sb, "gigapath_memory_budget_in_use_bytes", "gauge", "Request memory reserved now (bodies, decodes, tiles waiting, parsed tile features).");
        sb.Append(inv, $"gigapath_memory_budget_in_use_bytes {inUse}\n");
        Header(sb, "gigapath_memory_budget_bytes", "gauge", "The server's memory budget (--memory-budget-bytes).");
        sb.Append(inv, $"gigapath_memory_budget_bytes {budget}\n");
        Header(sb, "gigapath_model_ready", "gauge", "1 once the tile encoder is loaded.");
        sb.Append(inv, $"gigapath_model_ready {(Ready() ? 1 : 0)}\n");
        return sb.ToString();
    }

    private static void Header(StringBuilder sb, string name, string type, string help) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
          .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
}
