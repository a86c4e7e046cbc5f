using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using GigaPath.Models.Heads;
using GigaPath.Models.Slide;
using GigaPath.Runtime;
using GigaPath.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Benchmarks;

/// <summary>
/// One fine-tuning step of the full-size slide classification head (published encoder shape: 12 layers, 768-d,
/// feat_layer "5-11", dropout 0.1 as in the reference's PANDA recipe, two classes; random weights) on a slide of N
/// row-major tiles, batch 1: forward, cross-entropy, backward (blocked attention backward, checkpointed layers) and
/// an AdamW update, through the trainer's own step (<see cref="SequenceHeadTrainer.Backward"/>, mixed precision via
/// <see cref="TrainingReplica"/>). The same run measures the inference encoder's forward at the same N first (model
/// freed before the step's peak is taken); the Note column gives that time and the step / forward ratio.
/// Both are measured in the steady state of a training run: each runs once untimed at the same N first, because the
/// first step at a new size grows the heap by gigabytes, and first touches of fresh memory are costly where a VM
/// hands freed pages back to its host (this machine: 2 GiB take 2-8 s to fault in against 0.07 s to rewrite). Those
/// first runs' times are in the Note too (the peak RSS covers them).
/// Large blocks get mappings of their own while the step runs, as in every training step
/// (<see cref="NativeAllocator.MapLargeBlocks"/>); whether huge pages back them (THP "always", or "madvise" with
/// GLIBC_TUNABLES=glibc.malloc.hugetlb=1) changes the speed, not the memory, and the Note column records it.
/// Layer 12's output is not used by feat_layer "5-11", so the step runs 11 layers (the reference computes the 12th and
/// discards it); the forward runs all 12.
/// </summary>
[LongCases]
public class FinetuneStepBenchmarks
{
    [ParamsSource(typeof(DeviceParams), nameof(DeviceParams.Devices))]
    public string Device { get; set; } = "cpu";

    [ParamsSource(typeof(DeviceParams), nameof(DeviceParams.DTypes))]
    public string DType { get; set; } = "float32";

    /// <summary>The slide encoder benchmark's sizes (GIGAPATH_BENCH_SLIDE_TILES applies to both).</summary>
    [ParamsSource(typeof(SlideEncoderBenchmarks), nameof(SlideEncoderBenchmarks.TileCounts))]
    public int Tiles { get; set; }

    private readonly MeasuredCalls _measured = new();
    private TrainingReplica? _replica;
    private optim.Optimizer? _optimizer;
    private Tensor? _features, _coords, _lossScale;
    private double _forwardSeconds, _firstForwardSeconds, _firstStepSeconds;
    private IDisposable? _largeBlocks;
    private readonly List<double> _stepSeconds = [];

    [GlobalSetup]
    public void Setup()
    {
        var device = DeviceSelection.ParseDevice(Device);
        var dtype = DeviceSelection.ParseDType(DType);
        var config = SlideEncoderConfig.ProvGigaPath;
        (_features, _coords) = SlideInputs.Make(Tiles, config.InputChannels);
        var (warmFeatures, warmCoords) = SlideInputs.Make(256, config.InputChannels);

        // The inference forward at the same N, measured in this run after an untimed one at that N. Forward and step
        // each run on a small slide first, so that the untimed run at N shows what a new size costs (the heap's growth)
        // apart from the process's one-off start-up (JIT, libtorch's first calls).
        using (var encoder = SlideEncoder.CreateRandom(config, seed: 1, new SlideEncoderOptions { Device = device, DType = dtype }))
        {
            using (encoder.Embed(warmFeatures, warmCoords)) { }
            _firstForwardSeconds = Seconds(() => encoder.Embed(_features, _coords).Dispose());
            _forwardSeconds = Enumerable.Range(0, LongCasesAttribute.Iterations)
                .Select(_ => Seconds(() => encoder.Embed(_features, _coords).Dispose())).Average();
        }

        var headConfig = SlideClassificationHead.MeasurementConfig(config);
        manual_seed(3);
        _largeBlocks = NativeAllocator.MapLargeBlocks();
        _replica = new TrainingReplica(headConfig, HeadFactory.Create, device, dtype);
        _replica.SetTraining(true);
        _optimizer = optim.AdamW(_replica.Master.parameters(), lr: 1e-5);
        _lossScale = tensor(1f, device: device);
        Step(warmFeatures, warmCoords);
        warmFeatures.Dispose();
        warmCoords.Dispose();
        PeakMemory.Reset();
        _firstStepSeconds = Seconds(() => Step(_features!, _coords!));
        CaseRecords.Set(this, nameof(TrainStep), new CaseRecord { ItemsPerOp = Tiles, ItemName = "tiles" });
        _measured.Reset();
        _stepSeconds.Clear();
    }

    [Benchmark]
    public void TrainStep()
    {
        if (!_measured.Next()) return;
        _stepSeconds.Add(Seconds(() => Step(_features!, _coords!)));
    }

    private static double Seconds(Action run)
    {
        var clock = Stopwatch.StartNew();
        run();
        return clock.Elapsed.TotalSeconds;
    }

    private void Step(Tensor features, Tensor coords)
    {
        using var scope = NewDisposeScope();
        var input = new SlideTensors(features.to(_replica!.DType, _replica.Device), coords.to(_replica.Device), null);
        _replica.PushWeights();
        SequenceHeadTrainer.Backward(_replica, input, 1, _lossScale!);
        _optimizer!.step();
        _optimizer.zero_grad();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        long peak = PeakMemory.PeakBytes();
        double step = _stepSeconds.Count > 0 ? _stepSeconds.Average() : double.NaN;
        CaseRecords.Set(this, nameof(TrainStep), new CaseRecord
        {
            ItemsPerOp = Tiles,
            ItemName = "tiles",
            PeakBytes = peak,
            Note = $"forward {_forwardSeconds:F2} s; step/forward {step / _forwardSeconds:F2}x; first runs at this N: forward {_firstForwardSeconds:F2} s, step {_firstStepSeconds:F2} s; {LargeBlocks}",
        });
        Console.WriteLine($"// finetune step N={Tiles} {DType}: step {step:F2} s, forward {_forwardSeconds:F2} s, ratio {step / _forwardSeconds:F2}, "
            + $"first forward {_firstForwardSeconds:F2} s, first step {_firstStepSeconds:F2} s (ratio {_firstStepSeconds / _firstForwardSeconds:F2}), peak RSS {PeakMemory.Format(peak)}, {LargeBlocks}");
        _optimizer?.Dispose();
        _replica?.Dispose();
        _replica?.Master.Dispose();
        _features?.Dispose();
        _coords?.Dispose();
        _lossScale?.Dispose();
        _largeBlocks?.Dispose();
    }

    private static string LargeBlocks => NativeAllocator.HugePageMappings ? "large blocks mapped (huge pages)" : "large blocks mapped (4 KB pages)";
}
