using System.Diagnostics;
using GigaPath.Server.Batching;
using GigaPath.Server.Metrics;
using GigaPath.Server.Scoring;
using GigaPath.Server.Slide;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace GigaPath.Server.Hosting;

/// <summary>
/// The scoring server: Kestrel with the Azure ML-compatible <c>/score</c>, <c>/score/slide</c>, <c>/health</c>,
/// <c>/ready</c> and <c>/metrics</c>. Kestrel listens first and the models load in the background, so probes answer
/// during a long load. Stopping is graceful: requests in flight are finished (up to the shutdown timeout), then the
/// queue drains and the models are released.
/// </summary>
public sealed class ScoringServer : IAsyncDisposable
{
    private readonly ServerOptions _options;
    private readonly Func<ServerOptions, ITileEmbeddingBackend> _tileFactory;
    private readonly Func<ServerOptions, ISlideEmbeddingBackend>? _slideFactory;
    private readonly Action<ILoggingBuilder>? _logging;
    private readonly ModelState _models;
    private readonly MemoryBudget _budget;
    private WebApplication? _app;
    private Task? _loading;
    private ILogger _logger = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    private int _stopped;

    public ServerMetrics Metrics { get; } = new();

    /// <summary>The addresses Kestrel listens on (with the real port when 0 was asked for); empty before start.</summary>
    public IReadOnlyList<string> Addresses { get; private set; } = Array.Empty<string>();

    public bool IsReady => _models.IsReady;

    /// <param name="options">Validated here.</param>
    /// <param name="tileFactory">Loads the tile backend (on a background thread, after Kestrel has started).</param>
    /// <param name="slideFactory">Loads the slide backend when <see cref="ServerOptions.SlideModelDir"/> is set.</param>
    /// <param name="logging">Replaces the default console logging (tests silence it).</param>
    public ScoringServer(ServerOptions options, Func<ServerOptions, ITileEmbeddingBackend> tileFactory,
        Func<ServerOptions, ISlideEmbeddingBackend>? slideFactory = null, Action<ILoggingBuilder>? logging = null)
    {
        options.Validate();
        if (options.SlideModelDir is not null && slideFactory is null)
            throw new GigaPathException("--slide-model: this server was built without a slide encoder");
        _options = options;
        _tileFactory = tileFactory;
        _slideFactory = slideFactory;
        _logging = logging;
        _models = new ModelState { SlideConfigured = options.SlideModelDir is not null };
        _budget = new MemoryBudget(options.MemoryBudgetBytes);
        Metrics.Memory = () => (_budget.InUse, _budget.Capacity);
        Metrics.Ready = () => _models.IsReady;
        Metrics.SlideQueue = () => _models.Slide?.Runner.Depth ?? 0;
        Metrics.Queue = () => _models.Tile is { } t ? (t.Queue.Depth, t.Queue.Capacity) : (0, _options.QueueCapacity);
    }

    /// <summary>Starts listening and begins loading the models in the background.</summary>
    public async Task StartAsync(CancellationToken cancel = default)
    {
        if (_app is not null) throw new InvalidOperationException("server already started");
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "gigapath-serve",
            ContentRootPath = AppContext.BaseDirectory,
            Args = Array.Empty<string>(),
        });
        builder.Logging.ClearProviders();
        if (_logging is not null) _logging(builder.Logging);
        else builder.Logging.AddSimpleConsole(o => o.SingleLine = true).AddFilter("Microsoft", LogLevel.Warning);
        builder.WebHost.UseUrls(_options.Urls.ToArray());
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = Math.Max(_options.MaxBodyBytes, _options.MaxSlideBodyBytes);
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(_options.ShutdownTimeoutSeconds));

        var app = builder.Build();
        _logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("GigaPath.Server");
        ScoringRoutes.Map(app, _options, _models, Metrics, _budget, _logger);
        try
        {
            await app.StartAsync(cancel);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or ArgumentException or InvalidOperationException or FormatException)
        {
            await app.DisposeAsync();
            throw new GigaPathException($"--urls: cannot listen on {string.Join(", ", _options.Urls)}: {e.Message}", e);
        }
        _app = app;
        Addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? new List<string>();
        await RefuseUnauthenticatedExposureAsync(app);
        _models.SetListening();
        _logger.LogInformation("listening on {Addresses}; loading {Model}", string.Join(", ", Addresses), _options.ModelDir);
        if (_options.ApiKey is null)
            _logger.LogInformation("no API key configured: requests are not authenticated (loopback only)");
        _loading = Task.Run(LoadModels);
    }

    /// <summary>
    /// The bind guard on what Kestrel actually bound, not only on <c>--urls</c>: its configuration (a
    /// <c>Kestrel__Endpoints__…</c> environment variable, appsettings.json) can replace the addresses asked for. Without
    /// an API key, any bound address that is not loopback stops the server before it answers anything but 503.
    /// </summary>
    private async Task RefuseUnauthenticatedExposureAsync(WebApplication app)
    {
        if (_options.ApiKey is not null) return;
        List<string> exposed;
        try
        {
            exposed = Addresses.Where(a => !ServerOptions.IsLoopback(a, "bound address")).ToList();
        }
        catch (GigaPathException e)
        {
            exposed = new List<string> { $"{string.Join(", ", Addresses)} ({e.Message})" };
        }
        if (Addresses.Count == 0) exposed.Add("(Kestrel did not report its addresses)");
        if (exposed.Count == 0) return;
        await app.StopAsync();
        await app.DisposeAsync();
        _app = null;
        Interlocked.Exchange(ref _stopped, 1);
        throw new GigaPathException($"the server was bound to {string.Join(", ", exposed)}, which is not loopback, without an API key; " +
            "it stopped without serving. Its configuration (Kestrel__Endpoints__* or ASPNETCORE_* environment variables, appsettings.json) " +
            $"asked for that address: serve beyond this machine with --api-key-file or {ServerOptions.ApiKeyVariable}, or bind loopback only");
    }

    private void LoadModels()
    {
        try
        {
            var clock = Stopwatch.StartNew();
            var tile = _tileFactory(_options);
            var queue = new EmbeddingQueue(tile, _options.BatchSize, TimeSpan.FromMilliseconds(_options.MaxBatchDelayMs),
                _options.QueueCapacity, Metrics, _logger);
            _models.SetTile(new ModelState.TileModel(tile, queue));
            _logger.LogInformation("tile encoder ready in {Seconds:F1} s: {Model}", clock.Elapsed.TotalSeconds, tile.Description);
            if (_slideFactory is not null && _options.SlideModelDir is not null)
            {
                clock.Restart();
                var slide = _slideFactory(_options);
                _models.SetSlide(new ModelState.SlideModel(slide, new SlideRunner(_options.SlideQueueCapacity)));
                _logger.LogInformation("slide encoder ready in {Seconds:F1} s: {Model}", clock.Elapsed.TotalSeconds, slide.Description);
            }
        }
        catch (Exception e)
        {
            _models.SetFailure(e);
            _logger.LogError("loading the model failed: {Message}", e.Message);
            // A server that cannot load its model is of no use: stop it, so `gigapath serve` exits with the error.
            _app?.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
        }
    }

    /// <summary>Completes once the models are loaded; throws the load error when they could not be.</summary>
    public async Task WaitUntilReadyAsync(CancellationToken cancel = default)
    {
        if (_loading is null) throw new InvalidOperationException("server not started");
        await _loading.WaitAsync(cancel);
        if (_models.Failure is { } e) throw Wrap(e);
    }

    /// <summary>
    /// Starts, serves until <paramref name="cancel"/> fires, the process is asked to stop (Ctrl+C, SIGTERM) or the
    /// model fails to load (then throws its error), and stops gracefully.
    /// </summary>
    public async Task RunAsync(CancellationToken cancel)
    {
        await StartAsync(cancel);
        var lifetime = _app!.Services.GetRequiredService<IHostApplicationLifetime>();
        var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (cancel.Register(() => stopping.TrySetResult()))
        using (lifetime.ApplicationStopping.Register(() => stopping.TrySetResult()))
        {
            await stopping.Task;
        }
        await StopAsync();
        if (_models.Failure is { } e) throw Wrap(e);
    }

    private static Exception Wrap(Exception e) => e is GigaPathException g ? g : new GigaPathException($"loading the model failed: {e.Message}", e);

    /// <summary>Stops listening, finishes requests in flight, drains the queue and releases the models. Idempotent.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0 || _app is null) return;
        await _app.StopAsync();
        if (_loading is not null) await _loading;
        if (_models.Tile is { } tile)
        {
            await tile.Queue.DisposeAsync();
            tile.Backend.Dispose();
        }
        _models.Slide?.Backend.Dispose();
        _logger.LogInformation("stopped");
        await _app.DisposeAsync();
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
