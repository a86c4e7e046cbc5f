using System.CommandLine;
using GigaPath.Server.Hosting;
using GigaPath.Server.Scoring;
using GigaPath.Server.Slide;

namespace GigaPath.Cli.Commands;

/// <summary>
/// <c>gigapath serve</c>: an HTTP scoring endpoint that is a drop-in for Azure ML's Prov-GigaPath deployment
/// (<c>POST /score</c>), plus <c>/score/slide</c>, <c>/health</c>, <c>/ready</c> and <c>/metrics</c>. Runs until
/// Ctrl+C or SIGTERM, then finishes the requests in flight.
/// </summary>
public sealed class ServeCommand : ICliCommand
{
    public Command Build()
    {
        var defaults = new ServerOptions();
        var model = new Option<string>("--model") { Description = "Tile encoder folder (config.json + weights), as for embed-tiles", Required = true };
        var encoder = EncoderArgument.Create();
        var slideModel = new Option<string?>("--slide-model") { Description = "Slide encoder folder or weight file, as for embed-slide; enables POST /score/slide" };
        var urls = new Option<string[]>("--urls")
        {
            Description = $"Addresses to listen on, separated by ';' (default {ServerOptions.DefaultUrl}). Non-loopback addresses need an API key",
            AllowMultipleArgumentsPerToken = true,
        };
        var keyFile = new Option<string?>("--api-key-file") { Description = $"File whose first line is the key clients send as 'Authorization: Bearer <key>' (or set {ServerOptions.ApiKeyVariable})" };
        var batchSize = Int("--batch-size", defaults.BatchSize, "Most images per forward pass; 1 turns dynamic batching off");
        var delay = Int("--max-batch-delay-ms", defaults.MaxBatchDelayMs, "How long to wait for more images once a batch has its first");
        var queue = Int("--queue-capacity", defaults.QueueCapacity, "Images admitted at once (queued or being embedded); more are refused with 503");
        var maxImages = Int("--max-images", defaults.MaxImagesPerRequest, "Most images in one /score request");
        var slideQueue = Int("--slide-queue-capacity", defaults.SlideQueueCapacity, "Slide requests waiting for the slide encoder before 503");
        var maxBody = Long("--max-body-bytes", defaults.MaxBodyBytes, "Largest /score request body");
        var maxSlideBody = Long("--max-slide-body-bytes", defaults.MaxSlideBodyBytes, "Largest /score/slide request body");
        var maxPixels = Long("--max-image-pixels", defaults.MaxImagePixels, "Largest image (width x height, checked from the header before decoding)");
        var memoryBudget = Long(ServerOptions.MemoryBudgetOption, defaults.MemoryBudgetBytes, "Request memory in flight across the server (bodies, decoded pixels, tiles waiting for a batch, parsed tile features); more is refused with 503");
        var maxSlideTiles = Long("--max-slide-tiles", defaults.MaxSlideTiles, "Most tiles in one /score/slide request (checked before reading the tiles)");
        var maxAspect = new Option<double>("--max-aspect-ratio")
        {
            Description = "Thinnest /score image accepted (longest / shortest side), checked before the resize to 256 px",
            DefaultValueFactory = _ => defaults.MaxAspectRatio,
        };
        var metricsOpen = new Option<bool>("--metrics-open-on-loopback") { Description = "With an API key set, let clients on the loopback address read /metrics without it (a local scraper)" };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => defaults.Device };
        var precision = new PrecisionArguments(defaults.DType);
        var shutdown = Int("--shutdown-timeout", defaults.ShutdownTimeoutSeconds, "Seconds a stop waits for requests in flight");

        var cmd = new Command("serve", "Serve embeddings over HTTP, compatible with the Azure ML Prov-GigaPath endpoint (POST /score).");
        foreach (var o in new Option[] { model, encoder, slideModel, urls, keyFile, batchSize, delay, queue, maxImages, slideQueue, maxBody, maxSlideBody, maxPixels, memoryBudget, maxSlideTiles, maxAspect, metricsOpen, device, shutdown }.Concat(precision.All))
            cmd.Options.Add(o);

        // A synchronous action: the host's own console lifetime handles Ctrl+C/SIGTERM and drains requests for as
        // long as --shutdown-timeout allows, instead of the command line's short termination timeout.
        cmd.SetAction(parse => CliRunner.Run(() =>
        {
            var options = new ServerOptions
            {
                ModelDir = parse.GetValue(model)!,
                Encoder = parse.GetValue(encoder),
                SlideModelDir = parse.GetValue(slideModel),
                Urls = SplitUrls(parse.GetValue(urls)),
                ApiKey = ServerOptions.ResolveApiKey(parse.GetValue(keyFile)),
                BatchSize = parse.GetValue(batchSize),
                MaxBatchDelayMs = parse.GetValue(delay),
                QueueCapacity = parse.GetValue(queue),
                MaxImagesPerRequest = parse.GetValue(maxImages),
                SlideQueueCapacity = parse.GetValue(slideQueue),
                MaxBodyBytes = parse.GetValue(maxBody),
                MaxSlideBodyBytes = parse.GetValue(maxSlideBody),
                MaxImagePixels = parse.GetValue(maxPixels),
                MaxSlideTiles = parse.GetValue(maxSlideTiles),
                MemoryBudgetBytes = parse.GetValue(memoryBudget),
                MaxAspectRatio = parse.GetValue(maxAspect),
                MetricsOpenOnLoopback = parse.GetValue(metricsOpen),
                Device = parse.GetValue(device)!,
                DType = parse.GetValue(precision.DType)!,
                AllowSlowDType = precision.AllowSlowDType(parse),
                ShutdownTimeoutSeconds = parse.GetValue(shutdown),
            };
            var server = new ScoringServer(options, TileEncoderBackend.Load, SlideEncoderBackend.Load);
            server.RunAsync(CancellationToken.None).GetAwaiter().GetResult();
            return 0;
        }));
        return cmd;
    }

    private static Option<int> Int(string name, int value, string description) =>
        new(name) { Description = description, DefaultValueFactory = _ => value };

    private static Option<long> Long(string name, long value, string description) =>
        new(name) { Description = description, DefaultValueFactory = _ => value };

    /// <summary>--urls values, each possibly holding several addresses separated by ';' (as ASPNETCORE_URLS does).</summary>
    public static IReadOnlyList<string> SplitUrls(string[]? values)
    {
        var urls = (values ?? Array.Empty<string>())
            .SelectMany(v => v.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .ToList();
        return urls.Count > 0 ? urls : new[] { ServerOptions.DefaultUrl };
    }
}
