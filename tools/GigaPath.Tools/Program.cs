using System.Globalization;
using GigaPath;
using GigaPath.Models.Slide;
using GigaPath.Models.Tile;
using GigaPath.Pipeline;
using GigaPath.Runtime;
using GigaPath.Tools;
using GigaPath.Models;

// Developer tools: the demo model pair, and pipeline throughput measurements.
const string Usage = """
    usage:
      GigaPath.Tools make-demo-models [DIR]        writes DIR/tile and DIR/slide (default weights/demo): untrained, fixed seeds
      GigaPath.Tools measure SLIDE (--tile-model DIR --slide-model DIR | --full-random)
                     [--dtype float32|bfloat16|auto] [--max-tiles N] [--batch-size N] [--readers N] [--threads N] [--out DIR]
      GigaPath.Tools make-random-slide-model DIR   writes DIR (config.json + model.safetensors): the published slide
                     encoder shape (12 layers, 768-d) with random weights, for measuring fine-tuning at real size
      GigaPath.Tools make-random-tile-model DIR    writes DIR (config.json + model.safetensors, 4.5 GB): the published tile
                     encoder shape (ViT-giant, 1.13 B parameters) with random weights, for measuring serving at real size
      GigaPath.Tools make-synthetic-cohort DIR [--slides N] [--tiles T] [--seed S]
                     writes DIR/labels.csv and DIR/features/*.safetensors: N slides (default 4) of T tiles (default
                     10000) with random 1536-d features on a square grid, two alternating labels
      GigaPath.Tools head-gradients --head DIR|FILE --input FILE --out FILE
                     one training step of a head (dropout 0, cross-entropy against the input's label): writes logits,
                     loss and grad.<parameter> (float32) as safetensors. --head: a folder with the reference's
                     model.safetensors + head.json, or a head checkpoint; --input: tile_embeddings, coords, label
    """;

NativeAllocator.Configure();
try
{
    return args switch
    {
        ["make-demo-models"] => MakeDemo("weights/demo"),
        ["make-demo-models", var dir] => MakeDemo(dir),
        ["measure", var slide, .. var rest] => Measure(slide, rest),
        ["head-gradients", .. var rest] => HeadGradientsCommand(rest),
        ["make-random-slide-model", var dir] => MakeRandomSlideModel(dir),
        ["make-random-tile-model", var dir] => MakeRandomTileModel(dir),
        ["make-synthetic-cohort", var dir, .. var rest] => MakeSyntheticCohort(dir, rest),
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
        using var tile = TileEncoder.CreateRandom(TileEncoderConfig.ProvGigaPath, 0, new EncoderOptions { DType = dtype });
        using var slideEncoder = SlideEncoder.CreateRandom(SlideEncoderConfig.ProvGigaPath, 0, new SlideEncoderOptions { DType = dtype });
        return PipelineMeasurement.Run(slide, tile, slideEncoder, options, outDir);
    }
    if (!opts.TryGetValue("--tile-model", out var tileDir) || !opts.TryGetValue("--slide-model", out var slideDir))
        return Fail($"give --tile-model and --slide-model, or --full-random\n{Usage}");
    using var tileModel = TileEncoder.Load(tileDir, new EncoderOptions { DType = dtype });
    using var slideModel = SlideEncoder.Load(slideDir, new SlideEncoderOptions { DType = dtype });
    return PipelineMeasurement.Run(slide, tileModel, slideModel, options, outDir);
}

static int HeadGradientsCommand(string[] rest)
{
    var opts = new Dictionary<string, string>();
    for (int i = 0; i < rest.Length; i++)
    {
        if (rest[i] is "--head" or "--input" or "--out" && i + 1 < rest.Length) opts[rest[i]] = rest[++i];
        else return Fail($"unexpected argument '{rest[i]}'\n{Usage}");
    }
    if (!opts.TryGetValue("--head", out var head) || !opts.TryGetValue("--input", out var input) || !opts.TryGetValue("--out", out var output))
        return Fail($"head-gradients needs --head, --input and --out\n{Usage}");
    var result = GigaPath.Training.HeadGradients.Run(head, input, output);
    Console.WriteLine($"loss {result["loss"].item<float>():G9}; {result.Count - 2} parameter gradients written to {Path.GetFullPath(output)}");
    foreach (var t in result.Values) t.Dispose();
    return 0;
}

static int MakeRandomSlideModel(string dir)
{
    using var slide = SlideEncoder.CreateRandom(SlideEncoderConfig.ProvGigaPath, seed: 0);
    slide.Save(dir);
    Console.WriteLine($"wrote a random slide encoder of the published shape ({slide.ParameterCount:N0} parameters) to {Path.GetFullPath(dir)}");
    return 0;
}

static int MakeRandomTileModel(string dir)
{
    using var tile = TileEncoder.CreateRandom(TileEncoderConfig.ProvGigaPath, seed: 0);
    tile.Save(dir);
    Console.WriteLine($"wrote a random tile encoder of the published shape ({tile.ParameterCount:N0} parameters) to {Path.GetFullPath(dir)}");
    return 0;
}

static int MakeSyntheticCohort(string dir, string[] rest)
{
    int slides = 4, tiles = 10_000, seed = 0;
    for (int i = 0; i < rest.Length; i++)
    {
        if (i + 1 >= rest.Length) return Fail($"unexpected argument '{rest[i]}'\n{Usage}");
        switch (rest[i])
        {
            case "--slides": slides = SyntheticCohort.Parse(rest[++i], "--slides"); break;
            case "--tiles": tiles = SyntheticCohort.Parse(rest[++i], "--tiles"); break;
            case "--seed": seed = SyntheticCohort.Parse(rest[++i], "--seed"); break;
            default: return Fail($"unexpected argument '{rest[i]}'\n{Usage}");
        }
    }
    SyntheticCohort.Write(dir, slides, tiles, SlideEncoderConfig.ProvGigaPath.InputChannels, seed);
    Console.WriteLine($"wrote {slides} synthetic slides of {tiles} tiles and labels.csv to {Path.GetFullPath(dir)}");
    return 0;
}

static int Fail(string message)
{
    Console.Error.WriteLine(message);
    return 2;
}
