using BenchmarkDotNet.Attributes;
using GigaPath.Models.Tile;
using GigaPath.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using GigaPath.Models;

namespace GigaPath.Benchmarks;

/// <summary>
/// Full-size tile encoders (random weights; Prov-GigaPath's 1.13 B parameters and the other named encoders'):
/// tiles/s per encoder and batch size.
/// </summary>
public class TileEncoderBenchmarks
{
    [ParamsSource(nameof(Encoders))]
    public string Encoder { get; set; } = "gigapath";

    /// <summary>
    /// GIGAPATH_BENCH_ENCODERS (comma-separated TRIDENT names, or "all"), else one encoder per distinct architecture:
    /// hoptimus1 computes exactly what hoptimus0 does, and virchow what virchow2 does less 4 register tokens.
    /// </summary>
    public static IEnumerable<string> Encoders => Environment.GetEnvironmentVariable("GIGAPATH_BENCH_ENCODERS") switch
    {
        "all" => TileEncoderKind.All.Select(k => k.Name),
        { Length: > 0 } custom => custom.Split(',').Select(n => TileEncoderKind.Get(n).Name),
        _ => ["gigapath", "hoptimus0", "h0-mini", "uni_v1", "uni_v2", "virchow2"],
    };

    [ParamsSource(typeof(DeviceParams), nameof(DeviceParams.Devices))]
    public string Device { get; set; } = "cpu";

    [ParamsSource(typeof(DeviceParams), nameof(DeviceParams.DTypes))]
    public string DType { get; set; } = "float32";

    [ParamsSource(nameof(Batches))]
    public int Batch { get; set; }

    /// <summary>The job's batch sizes, or GIGAPATH_BENCH_TILE_BATCHES (comma-separated) when set.</summary>
    public static IEnumerable<int> Batches => Environment.GetEnvironmentVariable("GIGAPATH_BENCH_TILE_BATCHES") is { Length: > 0 } custom
        ? custom.Split(',').Select(int.Parse)
        : SuiteSettings.Short ? [1, 8] : [1, 8, 32];

    private TileEncoder? _encoder;
    private Tensor? _pixels;

    [GlobalSetup]
    public void Setup()
    {
        var device = DeviceSelection.ParseDevice(Device);
        var dtype = DeviceSelection.ParseDType(DType);
        _encoder = SharedModels.TileEncoder(device, dtype, Encoder);
        var config = _encoder.Config;
        _pixels = torch.randn(Batch, 3, config.ImageSize, config.ImageSize, generator: new Generator(7));
        CaseRecords.Set(this, nameof(Embed), new CaseRecord
        {
            ItemsPerOp = Batch,
            ItemName = "tiles",
            FlopsPerOp = Batch * ModelCost.TileEncoderFlopsPerTile(config),
            ExecutedFlopsPerOp = Batch * ModelCost.TileEncoderExecutedFlopsPerTile(config),
            GemmGflops = Roofline.GemmGflops(device, dtype),
            PeakGflops = Roofline.PeakGflops(device, dtype),
        });
        PeakMemory.Reset();
    }

    [Benchmark]
    public void Embed()
    {
        using var result = _encoder!.Embed(_pixels!);
        Roofline.Synchronize(_encoder.Options.Device);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CaseRecords.SetPeak(this, nameof(Embed), PeakMemory.PeakBytes());
        _pixels?.Dispose();
    }
}

/// <summary>
/// Full-size random models are expensive to make (1.1 B random numbers), so cases that differ only in batch size
/// share one per (encoder, device, dtype); the previous one is released when another is asked for.
/// </summary>
public static class SharedModels
{
    private static (string Key, TileEncoder Encoder)? _tile;

    public static TileEncoder TileEncoder(Device device, ScalarType dtype, string encoder = "gigapath")
    {
        var key = $"{encoder}/{device}/{dtype}";
        if (_tile is { } cached && cached.Key == key) return cached.Encoder;
        _tile?.Encoder.Dispose();
        _tile = null;
        GC.Collect();
        var model = GigaPath.Models.Tile.TileEncoder.CreateRandom(TileEncoderKind.Get(encoder).GetPublishedConfig(), seed: 1, new EncoderOptions { Device = device, DType = dtype });
        _tile = (key, model);
        return model;
    }

    /// <summary>Frees the cached model (4.5 GB in float32) and hands its memory back to the system.</summary>
    public static void Release()
    {
        _tile?.Encoder.Dispose();
        _tile = null;
        GC.Collect();
        GigaPath.Runtime.NativeAllocator.ReleaseFreeMemory();
    }
}
