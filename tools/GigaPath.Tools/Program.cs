using System.Globalization;
using GigaPath;
using GigaPath.Models.Slide;
using GigaPath.Models.Tile;
using GigaPath.Pipeline;
using GigaPath.Runtime;
using GigaPath.Tools;

// Developer tools: the demo model pair, and pipeline throughput measurements.
const string Usage = """
    usage:
      GigaPath.Tools make-demo-models [DIR]        writes DIR/tile and DIR/slide (default weights/demo): untrained, fixed seeds
      GigaPath.Tools measure SLIDE (--tile-model DIR --slide-model DIR | --full-random)
                     [--dtype float32|bfloat16|auto] [--max-tiles N] [--batch-size N] [--readers N] [--threads N] [--out DIR]
    """;

NativeAllocator.Configure();
try
{
    return args switch
    {
        ["make-demo-models"] => MakeDemo("weights/demo"),
        ["make-demo-models", var dir] => MakeDemo(dir),
        ["measure", var slide, .. var rest] => Measure(slide, rest),
        _ => Fail(Usage),
    };
}
catch (GigaPathException e)
{
    return Fail($"error: {e.Message}");
}

static int MakeDemo(string dir)
{
    DemoModels.Write(dir);
    Console.WriteLine($"wrote the untrained demo models to {Path.GetFullPath(dir)}/tile and {Path.GetFullPath(dir)}/slide");
    return 0;
}

static int Measure(string slide, string[] rest)
{
    var opts = new Dictionary<string, string>();
    bool fullRandom = false;
    for (int i = 0; i < rest.Length; i++)
    {
        if (rest[i] == "--full-random") fullRandom = true;
        else if (rest[i].StartsWith("--", StringComparison.Ordinal) && i + 1 < rest.Length) opts[rest[i]] = rest[++i];
        else return Fail($"unexpected argument '{rest[i]}'\n{Usage}");
    }
    int Int(string name, int fallback) => opts.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
    var dtype = DeviceSelection.ParseDType(opts.GetValueOrDefault("--dtype", "float32"));
    // libtorch's intra-op threads (default: one per core), to measure how they share the cores with the readers.
    if (opts.ContainsKey("--threads")) TorchSharp.torch.set_num_threads(Int("--threads", 0));
    var options = new PipelineOptions
    {
        BatchSize = Int("--batch-size", 16),
        Readers = Int("--readers", 4),
        MaxTiles = opts.ContainsKey("--max-tiles") ? Int("--max-tiles", 0) : null,
    };
    var outDir = opts.GetValueOrDefault("--out", Path.Combine(Path.GetTempPath(), "gigapath-measure"));
    if (fullRandom)
    {
        // Random weights with the published shapes: the speed of the real models, without the gated download.
        using var tile = TileEncoder.CreateRandom(TileEncoderConfig.ProvGigaPath, 0, new TileEncoderOptions { DType = dtype });
        using var slideEncoder = SlideEncoder.CreateRandom(SlideEncoderConfig.ProvGigaPath, 0, new SlideEncoderOptions { DType = dtype });
        return PipelineMeasurement.Run(slide, tile, slideEncoder, options, outDir);
    }
    if (!opts.TryGetValue("--tile-model", out var tileDir) || !opts.TryGetValue("--slide-model", out var slideDir))
        return Fail($"give --tile-model and --slide-model, or --full-random\n{Usage}");
    using var tileModel = TileEncoder.Load(tileDir, new TileEncoderOptions { DType = dtype });
    using var slideModel = SlideEncoder.Load(slideDir, new SlideEncoderOptions { DType = dtype });
    return PipelineMeasurement.Run(slide, tileModel, slideModel, options, outDir);
}

static int Fail(string message)
{
    Console.Error.WriteLine(message);
    return 2;
}
