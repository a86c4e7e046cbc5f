using System.Net;
using GigaPath.Runtime;
using Microsoft.AspNetCore.Http;

namespace GigaPath.Server.Hosting;

/// <summary>Everything <c>gigapath serve</c> can be told; validated once by <see cref="Validate"/>.</summary>
public sealed record ServerOptions
{
    public const string DefaultUrl = "http://127.0.0.1:5000";

    /// <summary>Environment variable holding the API key when no key file is given.</summary>
    public const string ApiKeyVariable = "GIGAPATH_API_KEY";

    /// <summary>Tile encoder folder (config.json + weights), as for <c>embed-tiles --model</c>.</summary>
    public string ModelDir { get; init; } = "";

    /// <summary>The named tile encoder the folder holds (<c>--encoder</c>), or null for the one its config.json fits.</summary>
    public string? Encoder { get; init; }

    /// <summary>Slide encoder folder or weight file; <c>/score/slide</c> answers 404 without one.</summary>
    public string? SlideModelDir { get; init; }

    public IReadOnlyList<string> Urls { get; init; } = new[] { DefaultUrl };

    /// <summary>The key clients send as <c>Authorization: Bearer &lt;key&gt;</c>; null: no authentication (loopback only).</summary>
    public string? ApiKey { get; init; }

    /// <summary>Most images embedded in one forward pass; 1 turns dynamic batching off.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>How long the worker waits for more images after the first one of a batch arrives.</summary>
    public int MaxBatchDelayMs { get; init; } = 5;

    /// <summary>Images admitted (waiting or being embedded) at once; a request that does not fit gets 503.</summary>
    public int QueueCapacity { get; init; } = 256;

    public int MaxImagesPerRequest { get; init; } = 64;

    /// <summary>Largest <c>/score</c> request body.</summary>
    public long MaxBodyBytes { get; init; } = 32L * 1024 * 1024;

    /// <summary>Largest <c>/score/slide</c> request body (a 10,000-tile slide is ~60 MB as safetensors, ~200 MB as JSON).</summary>
    public long MaxSlideBodyBytes { get; init; } = 512L * 1024 * 1024;

    /// <summary>Largest image accepted, in pixels (width × height, read from the header before decoding).</summary>
    public long MaxImagePixels { get; init; } = 4096L * 4096;

    /// <summary>
    /// Most tiles in one <c>/score/slide</c> request, checked before the tiles are read (a file's declared shape, a
    /// JSON body while it is parsed). Far below the slide encoder's 1,000,000-cell grid: 50,000 tiles take about
    /// 2 GiB and 4 minutes in the float32 CPU forward (benchmarks/README.md).
    /// </summary>
    public long MaxSlideTiles { get; init; } = 50_000;

    /// <summary>Thinnest image accepted by <c>/score</c> (longest over shortest side), see <see cref="Imaging.TilePreprocessor.MaxAspectRatio"/>.</summary>
    public double MaxAspectRatio { get; init; } = Imaging.TilePreprocessor.DefaultMaxAspectRatio;

    /// <summary>
    /// When an API key is set, <c>/metrics</c> needs it too; with this, clients on the loopback address (a scraper
    /// beside the server) may read it without the key.
    /// </summary>
    public bool MetricsOpenOnLoopback { get; init; }

    /// <summary>
    /// The server-wide bound on request memory in flight (bodies, decoded pixels, preprocessed tiles and their
    /// answers, parsed tile features); requests that do not fit get 503 with <c>Retry-After</c>. Model activations come
    /// on top (see the README's serving limits).
    /// </summary>
    public long MemoryBudgetBytes { get; init; } = 1L << 30;

    /// <summary>The command-line name of <see cref="MemoryBudgetBytes"/>, for messages.</summary>
    public const string MemoryBudgetOption = "--memory-budget-bytes";

    /// <summary>Slide requests waiting for the (single) slide encoder before 503.</summary>
    public int SlideQueueCapacity { get; init; } = 4;

    /// <summary>"cpu" or "cuda[:N]".</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>"float32", "bfloat16" (CUDA, or CPUs with bfloat16 hardware), "float16" (CUDA) or "auto".</summary>
    public string DType { get; init; } = "float32";

    /// <summary>Run bfloat16 on a CPU without bfloat16 hardware anyway (emulated: hundreds of times slower).</summary>
    public bool AllowSlowDType { get; init; }

    /// <summary>How long a stop waits for requests in flight.</summary>
    public int ShutdownTimeoutSeconds { get; init; } = 30;

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ModelDir))
            throw new GigaPathException("--model: a tile encoder folder is required");
        if (!Directory.Exists(ModelDir))
            throw new GigaPathException($"--model: folder '{ModelDir}' not found");
        if (SlideModelDir is not null && !Directory.Exists(SlideModelDir) && !File.Exists(SlideModelDir))
            throw new GigaPathException($"--slide-model: '{SlideModelDir}' not found");
        var device = DeviceSelection.ParseDevice(Device);
        var dtype = DeviceSelection.ParseDType(DType, device);
        DeviceSelection.EnsureSupported(device, dtype, AllowSlowDType);
        Positive(BatchSize, "--batch-size");
        Positive(QueueCapacity, "--queue-capacity");
        Positive(MaxImagesPerRequest, "--max-images");
        Positive(SlideQueueCapacity, "--slide-queue-capacity");
        if (MaxBatchDelayMs < 0) throw new GigaPathException($"--max-batch-delay-ms: must be >= 0, got {MaxBatchDelayMs}");
        // Bodies are read into one array (a /score/slide file body goes to a temporary file, but JSON is parsed in memory).
        InRange(MemoryBudgetBytes, 64L << 20, long.MaxValue, MemoryBudgetOption, "");
        InRange(MaxBodyBytes, 1, Math.Min(Array.MaxLength, MemoryBudgetBytes), "--max-body-bytes", $" (a body is held in memory: at most {MemoryBudgetOption} and {Array.MaxLength:N0})");
        InRange(MaxSlideBodyBytes, 1, Array.MaxLength, "--max-slide-body-bytes", " (a JSON body is held in one array)");
        InRange(MaxImagePixels, 1, Imaging.ImageDecoder.DefaultMaxPixels, "--max-image-pixels", "");
        if (Imaging.ImageDecoder.DecodingBytes(MaxImagePixels, 1) > MemoryBudgetBytes)
            throw new GigaPathException($"--max-image-pixels: decoding an image of {MaxImagePixels:N0} pixels takes {Imaging.ImageDecoder.DecodingBytes(MaxImagePixels, 1):N0} bytes, more than {MemoryBudgetOption} ({MemoryBudgetBytes:N0}): such an image could never be admitted");
        if (MaxSlideTiles <= 0) throw new GigaPathException($"--max-slide-tiles: must be positive, got {MaxSlideTiles}");
        Imaging.TilePreprocessor.CheckMaxAspectRatio(MaxAspectRatio);
        if (ShutdownTimeoutSeconds < 0) throw new GigaPathException($"--shutdown-timeout: must be >= 0, got {ShutdownTimeoutSeconds}");
        if (MaxImagesPerRequest > QueueCapacity)
            throw new GigaPathException($"--max-images ({MaxImagesPerRequest}) exceeds --queue-capacity ({QueueCapacity}): such a request could never be admitted");
        if (ApiKey is { } key && (key.Length == 0 || key.Any(char.IsWhiteSpace)))
            throw new GigaPathException("API key: must be non-empty and contain no whitespace");
        if (Urls.Count == 0)
            throw new GigaPathException("--urls: at least one address is required");
        foreach (var url in Urls)
        {
            if (!IsLoopback(url) && ApiKey is null)
                throw new GigaPathException($"--urls: '{url}' is not a loopback address; serving beyond this machine needs an API key (--api-key-file or GIGAPATH_API_KEY)");
        }
    }

    /// <summary>
    /// The API key: the first line of <paramref name="keyFile"/> (trimmed: editors add a newline) when given, else
    /// <see cref="ApiKeyVariable"/>, else null (no authentication). Keys are never taken on the command line, where
    /// other users could read them in the process list.
    /// </summary>
    public static string? ResolveApiKey(string? keyFile)
    {
        if (keyFile is not null)
        {
            if (!File.Exists(keyFile))
                throw new GigaPathException($"--api-key-file: '{keyFile}' not found");
            var key = File.ReadLines(keyFile).FirstOrDefault()?.Trim();
            if (string.IsNullOrEmpty(key))
                throw new GigaPathException($"--api-key-file: '{keyFile}' is empty; its first line must hold the key");
            return key;
        }
        var fromEnvironment = Environment.GetEnvironmentVariable(ApiKeyVariable)?.Trim();
        return string.IsNullOrEmpty(fromEnvironment) ? null : fromEnvironment;
    }

    private static void InRange(long value, long min, long max, string name, string why)
    {
        if (value < min || value > max)
            throw new GigaPathException($"{name}: must be between {min:N0} and {max:N0}{why}, got {value:N0}");
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0) throw new GigaPathException($"{name}: must be positive, got {value}");
    }

    /// <summary>True when <paramref name="url"/> binds only this machine: localhost, 127.0.0.0/8, ::1 (or a Unix socket).</summary>
    public static bool IsLoopback(string url) => IsLoopback(url, "--urls");

    /// <summary>
    /// Whether <paramref name="url"/> (an address asked for, or one Kestrel reports it bound) is loopback only; an
    /// address that is not a valid http address with a port in 0-65535 is refused naming <paramref name="source"/>.
    /// </summary>
    internal static bool IsLoopback(string url, string source)
    {
        BindingAddress address;
        try
        {
            address = BindingAddress.Parse(url);
        }
        catch (FormatException e)
        {
            throw new GigaPathException($"{source}: '{url}' is not a valid address ({e.Message})");
        }
        if (!string.Equals(address.Scheme, "http", StringComparison.OrdinalIgnoreCase))
            throw new GigaPathException($"{source}: '{url}': only http is served (TLS belongs to a reverse proxy in front)");
        if (address.IsUnixPipe) return true;
        if (address.Port is < 0 or > IPEndPoint.MaxPort)
            throw new GigaPathException($"{source}: '{url}': port {address.Port} is out of range (0-{IPEndPoint.MaxPort}; 0 picks a free port)");
        var host = address.Host.Trim('[', ']');
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)) return true;
        if (!IPAddress.TryParse(host, out var ip)) return false;
        if (ip.IsIPv4MappedToIPv6)
            throw new GigaPathException($"{source}: '{url}': an IPv4-mapped IPv6 address cannot be bound; write it as IPv4 ({ip.MapToIPv4()})");
        return IPAddress.IsLoopback(ip);
    }
}
