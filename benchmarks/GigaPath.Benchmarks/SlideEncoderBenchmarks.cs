using BenchmarkDotNet.Attributes;
using GigaPath.Models.Slide;
using GigaPath.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Benchmarks;

/// <summary>
/// Full-size Prov-GigaPath slide encoder (86 M parameters, random weights) on N tiles laid out row-major on a square
/// grid: seconds per slide and peak resident memory, the figure that must grow linearly in N. <c>Attention</c>
/// "dense" is the baseline: the same model with dense attention over the whole sequence (libtorch's fused SDPA).
/// </summary>
[LongCases]
public class SlideEncoderBenchmarks
{
    [ParamsSource(typeof(DeviceParams), nameof(DeviceParams.Devices))]
    public string Device { get; set; } = "cpu";

    [ParamsSource(typeof(DeviceParams), nameof(DeviceParams.DTypes))]
    public string DType { get; set; } = "float32";

    [ParamsSource(nameof(TileCounts))]
    public int Tiles { get; set; }

    [ParamsSource(nameof(Attentions))]
    public string Attention { get; set; } = "dilated";

    /// <summary>dilated and dense, or the comma-separated list in GIGAPATH_BENCH_ATTENTION.</summary>
    public static IEnumerable<string> Attentions => Environment.GetEnvironmentVariable("GIGAPATH_BENCH_ATTENTION") is { Length: > 0 } custom
        ? custom.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
        : ["dilated", "dense"];

    public static IEnumerable<int> TileCounts => SuiteSettings.SlideTiles([1_000, 10_000], [1_000, 10_000, 50_000]);

    private SlideEncoder? _encoder;
    private readonly MeasuredCalls _measured = new();
    private Tensor? _features, _coords;

    [GlobalSetup]
    public void Setup()
    {
        var dtype = DeviceSelection.ParseDType(DType);
        PeakMemory.Reset();
        _encoder = SlideEncoder.CreateRandom(SlideEncoderConfig.ProvGigaPath, seed: 1, new SlideEncoderOptions
        {
            Device = DeviceSelection.ParseDevice(Device),
            DType = dtype,
            Attention = Attention == "dense" ? SlideAttention.DenseBaseline : SlideAttention.Dilated,
        });
        // Warm-up on a small slide (kernel selection, allocator growth): the measured cases run once (LongCases).
        var (warmFeatures, warmCoords) = SlideInputs.Make(256, SlideEncoderConfig.ProvGigaPath.InputChannels);
        using (var warm = _encoder.Embed(warmFeatures, warmCoords)) { }
        warmFeatures.Dispose();
        warmCoords.Dispose();
        (_features, _coords) = SlideInputs.Make(Tiles, SlideEncoderConfig.ProvGigaPath.InputChannels);
        CaseRecords.Set(this, nameof(Encode), new CaseRecord { ItemsPerOp = Tiles, ItemName = "tiles" });
        _measured.Reset();
        PeakMemory.Reset();
    }

    [Benchmark]
    public void Encode()
    {
        if (!_measured.Next()) return;
        using var result = _encoder!.Embed(_features!, _coords!);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CaseRecords.SetPeak(this, nameof(Encode), PeakMemory.PeakBytes());
        _features?.Dispose();
        _coords?.Dispose();
        _encoder?.Dispose();
    }
}

public static class SlideInputs
{
    /// <summary>N random tile embeddings with row-major coordinates 256 px apart on a near-square grid.</summary>
    public static (Tensor Features, Tensor Coords) Make(int tiles, int dim)
    {
        int side = (int)Math.Ceiling(Math.Sqrt(tiles));
        var coords = new float[tiles * 2];
        for (int i = 0; i < tiles; i++)
        {
            coords[2 * i] = i % side * 256f;
            coords[2 * i + 1] = i / side * 256f;
        }
        return (torch.randn(tiles, dim, generator: new Generator(11)), torch.tensor(coords).reshape(tiles, 2));
    }
}
