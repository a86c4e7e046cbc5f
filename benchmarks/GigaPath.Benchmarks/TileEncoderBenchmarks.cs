using BenchmarkDotNet.Attributes;
using GigaPath.Models.Tile;
using GigaPath.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Benchmarks;

/// <summary>Full-size Prov-GigaPath tile encoder (1.13 B parameters, random weights): tiles/s per batch size.</summary>
public class TileEncoderBenchmarks
{
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
        _encoder = SharedModels.TileEncoder(device, dtype);
        _pixels = torch.randn(Batch, 3, 224, 224, generator: new Generator(7));
        CaseRecords.Set(this, nameof(Embed), new CaseRecord
        {
            ItemsPerOp = Batch,
            ItemName = "tiles",
            FlopsPerOp = Batch * ModelCost.TileEncoderFlopsPerTile(TileEncoderConfig.ProvGigaPath),
            ExecutedFlopsPerOp = Batch * ModelCost.TileEncoderExecutedFlopsPerTile(TileEncoderConfig.ProvGigaPath),
            GemmGflops = Roofline.GemmGflops(device, dtype),
            PeakGflops = Roofline.PeakGflops(device, dtype),
        });
        PeakMemory.Reset();
    }

    [Benchmark]
    public void Embed()
    {
        using var result = _encoder!.Embed(_pixels!);
        Roofline.Synchronize(_encoder.Device);
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
/// share one per (device, dtype); the previous one is released when another is asked for.
/// </summary>
public static class SharedModels
{
    private static (string Key, TileEncoder Encoder)? _tile;

    public static TileEncoder TileEncoder(Device device, ScalarType dtype)
    {
        var key = $"{device}/{dtype}";
        if (_tile is { } cached && cached.Key == key) return cached.Encoder;
        _tile?.Encoder.Dispose();
        _tile = null;
        GC.Collect();
        var encoder = GigaPath.Models.Tile.TileEncoder.CreateRandom(TileEncoderConfig.ProvGigaPath, seed: 1, new TileEncoderOptions { Device = device, DType = dtype });
        _tile = (key, encoder);
        return encoder;
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
