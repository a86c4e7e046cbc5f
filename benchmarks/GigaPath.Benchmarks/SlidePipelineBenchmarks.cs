using BenchmarkDotNet.Attributes;
using GigaPath.Imaging;
using GigaPath.Models.Slide;
using GigaPath.Models.Tile;
using GigaPath.Pipeline;
using GigaPath.Runtime;
using TorchSharp;

namespace GigaPath.Benchmarks;

/// <summary>
/// End to end on the bundled real slide (CMU-1-Small-Region.svs, 48 tissue tiles at 0.5 µm/px): open, plan, read and
/// preprocess tiles in parallel with the full-size tile encoder (random weights), slide encoder, thumbnail and
/// atomic writes. Items/s is tiles per second end to end; the note compares it with the tile encoder's own forward
/// passes inside the same run, the ceiling the streaming aims at. The short job embeds the first 8 tiles.
/// </summary>
[LongCases]
public class SlidePipelineBenchmarks
{
    [ParamsSource(typeof(DeviceParams), nameof(DeviceParams.Devices))]
    public string Device { get; set; } = "cpu";

    /// <summary>
    /// One dtype by default, what <c>--dtype auto</c> picks: bfloat16 on CPUs with bf16 hardware (float32 takes ~3x
    /// longer there), float32 elsewhere.
    /// </summary>
    [ParamsSource(nameof(DTypes))]
    public string DType { get; set; } = "bfloat16";

    public static IEnumerable<string> DTypes => Environment.GetEnvironmentVariable("GIGAPATH_BENCH_DTYPES") is { Length: > 0 }
        ? DeviceParams.DTypes()
        : [DeviceSelection.Name(DeviceSelection.ParseDType("auto"))];

    private SlidePipeline? _pipeline;
    private SlideEncoder? _slideEncoder;
    private SlideJob? _job;
    private string _outRoot = "";
    private int _run;
    private readonly MeasuredCalls _measured = new();

    [GlobalSetup]
    public void Setup()
    {
        var device = DeviceSelection.ParseDevice(Device);
        var dtype = DeviceSelection.ParseDType(DType);
        var tileEncoder = SharedModels.TileEncoder(device, dtype);
        _slideEncoder = SlideEncoder.CreateRandom(SlideEncoderConfig.ProvGigaPath, seed: 1, new SlideEncoderOptions { Device = device, DType = dtype });
        var options = new PipelineOptions { BatchSize = 8, MaxTiles = SuiteSettings.Short ? 8 : null };
        _pipeline = new SlidePipeline(tileEncoder, _slideEncoder, options);
        var slide = BenchPaths.Fixture("slides", "CMU-1-Small-Region.svs");
        _job = new SlideJob(SlideIds.FromPath(slide), slide);
        _outRoot = Path.Combine(Path.GetTempPath(), $"gigapath-bench-pipeline-{Environment.ProcessId}");
        // One-time costs stay out of the measured run, as in a cohort: hashing the weights, the first forward pass.
        _ = _pipeline.SettingsFor(_job);
        var preprocessor = ImageFileInputs.PreprocessorFor(tileEncoder.Config);
        using (var warm = preprocessor.ToBatch(Enumerable.Range(0, options.BatchSize).Select(_ => new float[preprocessor.OutputLength]).ToList()))
            tileEncoder.Embed(warm).Dispose();
        PeakMemory.Reset();
    }

    [Benchmark]
    public int Process()
    {
        if (!_measured.Next()) return 0;
        var manifest = _pipeline!.Process(_job!, new SlideOutputs(Path.Combine(_outRoot, $"run{_run++}"), _job!.SlideId));
        var t = manifest.Timings;
        CaseRecords.Set(this, nameof(Process), new CaseRecord
        {
            ItemsPerOp = manifest.Tiling.TileCount,
            ItemName = "tiles",
            Note = $"{manifest.Tiling.TileCount} tiles; tile encoder alone {t.TilesPerSecondTileEncoderOnly:F2} tiles/s, " +
                   $"waited {t.WaitingForTilesSeconds:F2} s for tiles",
        });
        return manifest.Tiling.TileCount;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CaseRecords.SetPeak(this, nameof(Process), PeakMemory.PeakBytes());
        _slideEncoder?.Dispose();
        if (Directory.Exists(_outRoot)) Directory.Delete(_outRoot, recursive: true);
    }
}
