using GigaPath.Runtime;
using System.Diagnostics;
using System.Globalization;
using GigaPath.IO;
using GigaPath.Models.Slide;
using TorchSharp;
using static TorchSharp.torch;

// Usage: SlideMemoryProbe --tiles N [--depth K] [--dtype float32|bfloat16] [--write DIR]
// Encodes a random slide of N tiles with a randomly initialised gigapath_slide_enc12l768d (optionally with fewer
// layers) and prints wall time and the process's peak resident memory (VmHWM). With --write, saves the model folder
// and a tiles.safetensors to DIR instead, for timing `gigapath embed-slide` under /usr/bin/time -v.
NativeAllocator.Configure();
var options = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2) options[args[i]] = args[i + 1];
int tiles = int.Parse(options.GetValueOrDefault("--tiles", "10000"), CultureInfo.InvariantCulture);
int depth = int.Parse(options.GetValueOrDefault("--depth", "12"), CultureInfo.InvariantCulture);
var dtype = DeviceSelection.ParseDType(options.GetValueOrDefault("--dtype", "float32"));
var config = SlideEncoderConfig.ProvGigaPath with { Depth = depth };

var clock = Stopwatch.StartNew();
using var encoder = SlideEncoder.CreateRandom(config, 0, new SlideEncoderOptions { DType = dtype });
double createSeconds = clock.Elapsed.TotalSeconds;
long afterModel = PeakRss();

using var scope = torch.NewDisposeScope();
var x = randn([tiles, config.InputChannels], generator: new Generator(1));
int side = (int)Math.Ceiling(Math.Sqrt(tiles));
var cell = arange(tiles, dtype: ScalarType.Int64);
var coords = stack([(cell % side) * 256, (cell / side) * 256], 1);

if (options.TryGetValue("--write", out var dir))
{
    encoder.Save(Path.Combine(dir, "model"));
    TileFeatureFile.WriteSafetensors(Path.Combine(dir, "tiles.safetensors"),
        new TileFeatures(x.data<float>().ToArray(), tiles, config.InputChannels,
            coords.to_type(ScalarType.Float64).data<double>().ToArray(), new Dictionary<string, object>()));
    Console.WriteLine($"wrote {dir}/model and {dir}/tiles.safetensors");
    return;
}

clock.Restart();
using var result = encoder.Embed(x, coords);
double encodeSeconds = clock.Elapsed.TotalSeconds;
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"N={tiles} depth={depth} dtype={DeviceSelection.Name(dtype)} threads={torch.get_num_threads()}: " +
    $"model {createSeconds:F1} s, encode {encodeSeconds:F1} s, peak RSS after model {afterModel / 1048576.0:F0} MiB, " +
    $"peak RSS total {PeakRss() / 1048576.0:F0} MiB, |embedding| {result.MeanPooledEmbedding.norm().item<float>():F3}"));

static long PeakRss()
{
    foreach (var line in File.ReadLines("/proc/self/status"))
        if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    return Process.GetCurrentProcess().PeakWorkingSet64;
}
