using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using GigaPath.IO;
using GigaPath.Models.Heads;
using GigaPath.Models.Slide;
using GigaPath.Runtime;
using GigaPath.Training;
using GigaPath.Weights;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// The first fine-tuning step of a run, as <c>gigapath finetune</c> takes it: the published slide head (12 layers,
/// 768-d, feat_layer 5-11, dropout 0.1), AdamW, one slide of N random tiles, in this (fresh) process. Prints the step's
/// time, the process's peak RSS and the resident memory after each stage, with a 0.25 s RSS timeline's maximum per stage.
/// </summary>
internal static class TrainStep
{
    public static int Run(int tiles, ScalarType dtype, string? writeDir)
    {
        using var sampler = new RssSampler();
        var clock = Stopwatch.StartNew();
        var config = SlideEncoderConfig.ProvGigaPath;
        var headConfig = SlideClassificationHead.MeasurementConfig(config);
        manual_seed(3);
        var (features, coords) = RandomSlide.Make(tiles, config.InputChannels, seed: 11);
        if (writeDir is not null)
        {
            // For `GigaPath.Tools head-gradients --head DIR/head --input DIR/input.safetensors`.
            using var head = HeadFactory.Create(headConfig);
            HeadCheckpoint.Save(head, Path.Combine(writeDir, "head", HeadCheckpoint.DefaultFileName));
            SafeTensorsWriter.Write(Path.Combine(writeDir, "input.safetensors"), new Dictionary<string, Tensor>
            {
                ["tile_embeddings"] = features, ["coords"] = coords, ["label"] = tensor(new long[] { 1 }),
            });
            Console.WriteLine($"wrote {writeDir}/head and {writeDir}/input.safetensors");
            return 0;
        }
        sampler.Stage("head");
        var probeHead = HeadFactory.Create(headConfig);
        sampler.Stage("replica");
        using var replica = new TrainingReplica(headConfig, _ => probeHead, CPU, dtype);
        replica.SetTraining(true);
        sampler.Stage("optimizer made");
        using var optimizer = optim.AdamW(replica.Master.parameters(), lr: 1e-5);
        using var lossScale = tensor(1f);
        sampler.Stage("step: forward and backward");
        var stepClock = Stopwatch.StartNew();
        float loss;
        using (var scope = NewDisposeScope())
        {
            var input = new SlideTensors(features.to(replica.DType), coords, null);
            replica.PushWeights();
            loss = SequenceHeadTrainer.Backward(replica, input, 1, lossScale);
        }
        double backwardSeconds = stepClock.Elapsed.TotalSeconds;
        sampler.Stage("step: optimizer");
        optimizer.step();
        optimizer.zero_grad();
        double stepSeconds = stepClock.Elapsed.TotalSeconds;
        sampler.Stage("end");
        sampler.Print();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"N={tiles} dtype={DeviceSelection.Name(dtype)} threads={get_num_threads()} malloc tuning {(NativeAllocator.Active ? "on" : "off")}, " +
            $"huge-page mappings {(NativeAllocator.HugePageMappings ? "yes" : "no")}: loss {loss:F4}; first step {stepSeconds:F1} s " +
            $"(forward+backward {backwardSeconds:F1} s); peak RSS {ProcessMemory.PeakResidentBytes / 1048576.0:F0} MiB; whole run {clock.Elapsed.TotalSeconds:F1} s"));
        return 0;
    }

    /// <summary>
    /// The fine-tuning memory benchmark: <c>--train N</c> in a fresh process per run and size, printing each run's peak
    /// RSS, KB per tile over the span from the previous size and the step's time.
    /// </summary>
    public static int Sweep(string sizes, Dictionary<string, string> options)
    {
        var tiles = sizes.Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        int runs = int.Parse(options.GetValueOrDefault("--runs", "2"), CultureInfo.InvariantCulture);
        var dtype = options.GetValueOrDefault("--dtype", "float32");
        Console.WriteLine($"first fine-tuning step (slide head, feat_layer 5-11, dropout 0.1, AdamW), {dtype}, {runs} fresh process(es) per size; {Environment.ProcessorCount} cores");
        var table = new SweepTable("step (s)");
        foreach (int n in tiles)
        {
            var peaks = new List<double>();
            var seconds = new List<double>();
            for (int r = 0; r < runs; r++)
            {
                var text = SweepTable.Child(Environment.ProcessPath!, [typeof(TrainStep).Assembly.Location, "--train", n.ToString(CultureInfo.InvariantCulture), "--dtype", dtype]);
                var m = Regex.Match(text, @"first step ([\d.]+) s .*peak RSS ([\d.]+) MiB");
                if (!m.Success) throw new InvalidOperationException($"no step time and peak RSS in the probe's output:\n{text}");
                seconds.Add(double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
                peaks.Add(double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
            }
            table.Row(n, peaks, string.Join(" / ", seconds.Select(s => s.ToString("F0", CultureInfo.InvariantCulture))));
        }
        return 0;
    }
}

/// <summary>Samples this process's RSS every 0.25 s and keeps the maximum per named stage.</summary>
internal sealed class RssSampler : IDisposable
{
    private readonly List<(string Stage, long MaxBytes, long EndBytes)> _stages = [];
    private readonly Thread _thread;
    private volatile bool _stop;
    private string _stage = "start";
    private long _max;
    private readonly Lock _lock = new();

    public RssSampler()
    {
        _thread = new Thread(() =>
        {
            var clock = Stopwatch.StartNew();
            bool timeline = Environment.GetEnvironmentVariable("PROBE_TIMELINE") == "1";
            int tick = 0;
            while (!_stop)
            {
                long rss = CurrentBytes();
                lock (_lock) _max = Math.Max(_max, rss);
                if (timeline && tick++ % 4 == 0)
                {
                    var heap = Heap.Info();
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"t {clock.Elapsed.TotalSeconds,6:F1} s  rss {rss >> 20,6} MiB  heap {heap.Arena >> 20,6} (in use {heap.InUse >> 20,6}, free {heap.Free >> 20,6})  mmapped {heap.Mapped >> 20,6}  [{_stage}]"));
                }
                Thread.Sleep(250);
            }
        }) { IsBackground = true };
        _thread.Start();
    }

    public void Stage(string next)
    {
        long rss = CurrentBytes();
        lock (_lock)
        {
            _stages.Add((_stage, Math.Max(_max, rss), rss));
            var heap = Heap.Info();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"end of {_stage}: rss {rss >> 20} MiB  heap {heap.Arena >> 20} (in use {heap.InUse >> 20}, free {heap.Free >> 20})  mmapped {heap.Mapped >> 20}"));
            (_stage, _max) = (next, rss);
        }
    }

    public void Print()
    {
        foreach (var (stage, max, end) in _stages)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {stage,-28} max RSS {max / 1048576.0,7:F0} MiB, at its end {end / 1048576.0,7:F0} MiB"));
    }

    /// <summary>This process's resident memory now (VmRSS).</summary>
    public static long CurrentBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return 0;
    }

    public void Dispose() => _stop = true;
}

/// <summary>N random tile embeddings (the given seed) with coordinates 256 px apart on a near-square grid, row-major.</summary>
internal static class RandomSlide
{
    public static (Tensor Features, Tensor Coords) Make(int tiles, int dim, int seed)
    {
        int side = (int)Math.Ceiling(Math.Sqrt(tiles));
        var coords = new float[tiles * 2];
        for (int i = 0; i < tiles; i++)
        {
            coords[2 * i] = i % side * 256f;
            coords[2 * i + 1] = i / side * 256f;
        }
        return (randn(tiles, dim, generator: new Generator((ulong)seed)), tensor(coords).reshape(tiles, 2));
    }
}

/// <summary>
/// The memory sweeps' table (printed as it fills): per size each fresh process's peak RSS, their spread, the KB per tile
/// over the span from the previous size (mean peaks), and one more column.
/// </summary>
internal sealed class SweepTable
{
    private double? _previousPeak;
    private int _previousTiles;

    public SweepTable(string lastColumn)
    {
        Console.WriteLine($"| tiles | peak RSS per run (MiB) | spread | KB/tile over the span from the previous size | {lastColumn} |");
        Console.WriteLine("|---:|---|---:|---:|---:|");
    }

    public void Row(int tiles, IReadOnlyList<double> peaks, string last)
    {
        double mean = peaks.Average();
        string perTile = _previousPeak is not { } p0 ? "-" : ((mean - p0) * 1048576 / 1000 / (tiles - _previousTiles)).ToString("F1", CultureInfo.InvariantCulture);
        (_previousPeak, _previousTiles) = (mean, tiles);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {tiles:N0} | {string.Join(" / ", peaks.Select(p => p.ToString("F0", CultureInfo.InvariantCulture)))} | {(peaks.Max() - peaks.Min()) / peaks.Min() * 100:F1} % | {perTile} | {last} |"));
    }

    /// <summary>Runs a child process to its end and returns its standard output (throws with its output on failure).</summary>
    public static string Child(string file, string[] arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} failed ({process.ExitCode}):\n{stdout}{stderr.Result}");
        return stdout;
    }
}
