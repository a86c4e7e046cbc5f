using GigaPath.Runtime;
using System.Diagnostics;
using System.Globalization;
using GigaPath.IO;
using GigaPath.Models.Slide;
using TorchSharp;
using static TorchSharp.torch;

// Usage:
//   SlideMemoryProbe --tiles N [--depth K] [--dtype float32|bfloat16] [--write DIR]
//     Encodes a random slide of N tiles with a randomly initialised gigapath_slide_enc12l768d (optionally with fewer
//     layers) and prints wall time and the process's peak resident memory (VmHWM). With --write, saves the model
//     folder and a tiles.safetensors to DIR instead.
//   SlideMemoryProbe --from DIR [--dtype ...]
//     Encodes DIR's slide (from --write) as embed-slide does, printing resident memory, malloc's heap and the GC heap
//     after each stage and each layer: where the memory goes.
//   SlideMemoryProbe --sweep 2000,10000,40000,100000 --cli PATH/GigaPath.Cli.dll [--runs 3] [--dtype ...] [--work DIR]
//     The memory benchmark: `gigapath embed-slide` on a random slide of each size, each run in a fresh process,
//     printing its peak RSS, KB per tile (above the smallest size) and tiles/s, and the spread between runs.
//   SlideMemoryProbe --train N [--dtype ...] [--write DIR]
//     The first fine-tuning step of a run on a random slide of N tiles (TrainStep.cs): step time, peak RSS and the
//     resident memory per stage. With --write, saves DIR/head and DIR/input.safetensors for GigaPath.Tools head-gradients.
//   SlideMemoryProbe --train-sweep 10000,50000 [--runs 2] [--dtype ...]
//     The fine-tuning memory benchmark: --train N in a fresh process per run and size.
NativeAllocator.Configure();
var options = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2) options[args[i]] = args[i + 1];
if (options.TryGetValue("--sweep", out var sweep)) return Sweep.Run(sweep, options);
if (options.TryGetValue("--train-sweep", out var trainSweep)) return TrainStep.Sweep(trainSweep, options);
if (options.TryGetValue("--train", out var trainTiles))
    return TrainStep.Run(int.Parse(trainTiles, CultureInfo.InvariantCulture), DeviceSelection.ParseDType(options.GetValueOrDefault("--dtype", "float32")),
        options.GetValueOrDefault("--write"));
int tiles = int.Parse(options.GetValueOrDefault("--tiles", "10000"), CultureInfo.InvariantCulture);
int depth = int.Parse(options.GetValueOrDefault("--depth", "12"), CultureInfo.InvariantCulture);
var dtype = DeviceSelection.ParseDType(options.GetValueOrDefault("--dtype", "float32"));
var config = SlideEncoderConfig.ProvGigaPath with { Depth = depth };

if (options.TryGetValue("--from", out var from))
{
    // Where the memory goes for a written slide (--write): resident memory and malloc's heap after each stage and layer.
    Trace("start");
    var features = TileFeatureFile.Read(Path.Combine(from, "tiles.safetensors"));
    Trace("features read");
    using var model = SlideEncoder.Load(Path.Combine(from, "model"), new SlideEncoderOptions { DType = dtype });
    Trace("model loaded");
    using var traceScope = torch.NewDisposeScope();
    using var flat = torch.from_array(features.Features);
    var embedded = model.Embed(flat.view(features.Count, features.Dim),
        torch.tensor(features.Coords!, [features.Count, 2]), false, (name, _) => { if (name.StartsWith("hidden_", StringComparison.Ordinal) || name.StartsWith("dilated", StringComparison.Ordinal)) Trace(name); });
    Trace("embedded");
    embedded.Dispose();
    return 0;
}

var clock = Stopwatch.StartNew();
using var encoder = SlideEncoder.CreateRandom(config, 0, new SlideEncoderOptions { DType = dtype });
double createSeconds = clock.Elapsed.TotalSeconds;
long afterModel = ProcessMemory.PeakResidentBytes;

using var scope = torch.NewDisposeScope();
var (x, coords) = RandomSlide.Make(tiles, config.InputChannels, seed: 1);

if (options.TryGetValue("--write", out var dir))
{
    encoder.Save(Path.Combine(dir, "model"));
    TileFeatureFile.WriteSafetensors(Path.Combine(dir, "tiles.safetensors"),
        new TileFeatures(x.data<float>().ToArray(), tiles, config.InputChannels,
            coords.to_type(ScalarType.Float64).data<double>().ToArray(), new Dictionary<string, object>()));
    Console.WriteLine($"wrote {dir}/model and {dir}/tiles.safetensors");
    return 0;
}

clock.Restart();
using var result = encoder.Embed(x, coords);
double encodeSeconds = clock.Elapsed.TotalSeconds;
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"N={tiles} depth={depth} dtype={DeviceSelection.Name(dtype)} threads={torch.get_num_threads()}: " +
    $"model {createSeconds:F1} s, encode {encodeSeconds:F1} s, peak RSS after model {afterModel / 1048576.0:F0} MiB, " +
    $"peak RSS total {ProcessMemory.PeakResidentBytes / 1048576.0:F0} MiB, |embedding| {result.MeanPooledEmbedding.norm().item<float>():F3}"));
return 0;

static void Trace(string stage)
{
    var status = File.ReadAllLines("/proc/self/status");
    long Kb(string key) => long.Parse(status.First(l => l.StartsWith(key, StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    var heap = Heap.Info();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{stage,-16} rss {Kb("VmRSS:") / 1024,6} MiB  anon {Kb("RssAnon:") / 1024,6}  file {Kb("RssFile:") / 1024,5}  hwm {Kb("VmHWM:") / 1024,6}  heap {heap.Arena >> 20,6} MiB (in use {heap.InUse >> 20,6}, free {heap.Free >> 20,6}, mmapped {heap.Mapped >> 20,6})  gc {GC.GetTotalMemory(false) >> 20,5} MiB"));
}

internal static class Heap
{
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern MallInfo2 mallinfo2();

    public static (long Arena, long InUse, long Free, long Mapped) Info()
    {
        var m = mallinfo2();
        return ((long)m.Arena, (long)m.Uordblks, (long)m.Fordblks, (long)m.Hblkhd);
    }
}

internal static class Sweep
{
    public static int Run(string sizes, Dictionary<string, string> options)
    {
        var tiles = sizes.Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        int runs = int.Parse(options.GetValueOrDefault("--runs", "3"), CultureInfo.InvariantCulture);
        var cli = options.TryGetValue("--cli", out var c) ? c : throw new ArgumentException("--sweep needs --cli PATH/GigaPath.Cli.dll");
        var work = options.GetValueOrDefault("--work", Path.Combine(Path.GetTempPath(), "gigapath-slide-memory"));
        var dtype = options.GetValueOrDefault("--dtype", "float32");
        Console.WriteLine($"embed-slide, full-size random slide encoder, {dtype}, {runs} fresh process(es) per size; {Environment.ProcessorCount} cores");
        var table = new SweepTable("tiles/s");
        foreach (int n in tiles)
        {
            var dir = Path.Combine(work, n.ToString(CultureInfo.InvariantCulture));
            if (!File.Exists(Path.Combine(dir, "tiles.safetensors")))
                SweepTable.Child(Environment.ProcessPath!, [typeof(Sweep).Assembly.Location, "--tiles", n.ToString(CultureInfo.InvariantCulture), "--write", dir]);
            var peaks = new List<double>();
            var rates = new List<double>();
            for (int r = 0; r < runs; r++)
            {
                var output = Path.Combine(dir, $"out{r}.safetensors");
                var text = SweepTable.Child("dotnet", [cli, "embed-slide", "--model", Path.Combine(dir, "model"), "--tiles", Path.Combine(dir, "tiles.safetensors"),
                    "--out", output, "--dtype", dtype]);
                // embed-slide's summary: "... in S s (R tiles/s, peak RSS M MiB)".
                var m = System.Text.RegularExpressions.Regex.Match(text, @"\(([\d.]+) tiles/s, peak RSS ([\d.]+) MiB\)");
                if (!m.Success) throw new InvalidOperationException($"no peak RSS in embed-slide's output:\n{text}");
                rates.Add(double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
                peaks.Add(double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
                File.Delete(output);
            }
            table.Row(n, peaks, rates.Average().ToString("F0", CultureInfo.InvariantCulture));
        }
        return 0;
    }
}
