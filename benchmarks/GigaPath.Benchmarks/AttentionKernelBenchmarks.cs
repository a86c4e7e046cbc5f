using BenchmarkDotNet.Attributes;
using GigaPath.Models.Slide;
using GigaPath.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Benchmarks;

/// <summary>
/// One layer's attention at the production shape (16 heads × 48, N + 1 tokens): the hand-written dilated kernel
/// with the published segments/ratios, against dense attention over the whole sequence - libtorch's fused
/// scaled_dot_product_attention, and a plain softmax(QKᵀ)V that materialises the [H, L, L] scores (only where they
/// fit in half of the machine's memory; otherwise the row says so).
/// </summary>
[LongCases]
public class AttentionKernelBenchmarks
{
    [ParamsSource(typeof(DeviceParams), nameof(DeviceParams.Devices))]
    public string Device { get; set; } = "cpu";

    [ParamsSource(typeof(DeviceParams), nameof(DeviceParams.DTypes))]
    public string DType { get; set; } = "float32";

    [ParamsSource(nameof(TileCounts))]
    public int Tiles { get; set; }

    public static IEnumerable<int> TileCounts => SuiteSettings.SlideTiles([1_000, 10_000, 50_000], [1_000, 10_000, 50_000]);

    private const int Heads = 16, HeadDim = 48;
    private Tensor? _q, _k, _v;
    private bool _naiveFits;
    private readonly MeasuredCalls _measured = new();
    private string _ran = "";

    // The measured case runs once (LongCases), so each method is warmed up at the measured size first, keeping the
    // one-time costs of a new size (heap growth, kernel selection for the dilated kernel's many block shapes) out of
    // the measurement. Dense attention is one fused call; its warm-up at 50k would cost a minute, so it is warmed
    // where that is cheap.
    [GlobalSetup(Target = nameof(Dilated))]
    public void SetupDilated() => Setup(RunDilated, warm: true);

    [GlobalSetup(Target = nameof(DenseSdpa))]
    public void SetupDenseSdpa() => Setup(RunDenseSdpa, warm: Tiles <= 10_000);

    [GlobalSetup(Target = nameof(DenseNaive))]
    public void SetupDenseNaive() => Setup(RunDenseNaive, warm: Tiles <= 10_000);

    private void Setup(Action method, bool warm)
    {
        Prepare();
        if (warm) method();
        _measured.Reset();
        PeakMemory.Reset();
    }

    private void Prepare()
    {
        var device = DeviceSelection.ParseDevice(Device);
        var dtype = DeviceSelection.ParseDType(DType);
        long length = Tiles + 1;
        var g = new Generator(5);
        _q = torch.randn([1, length, Heads, HeadDim], generator: g).to(dtype, device);
        _k = torch.randn([1, length, Heads, HeadDim], generator: g).to(dtype, device);
        _v = torch.randn([1, length, Heads, HeadDim], generator: g).to(dtype, device);
        long scoreBytes = Heads * length * length * 4L * 2; // scores + softmax
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        _naiveFits = scoreBytes < available / 2;
        var gemm = Roofline.GemmGflops(device, dtype);
        var peak = Roofline.PeakGflops(device, dtype);
        double denseFlops = 4.0 * Heads * length * length * HeadDim;
        foreach (var method in new[] { nameof(Dilated), nameof(DenseSdpa), nameof(DenseNaive) })
        {
            bool skipped = method == nameof(DenseNaive) && !_naiveFits;
            CaseRecords.Set(this, method, new CaseRecord
            {
                // A case that does not run has no rate: its columns stay empty.
                ItemsPerOp = skipped ? 0 : Tiles,
                ItemName = "tiles",
                FlopsPerOp = skipped ? 0 : method == nameof(Dilated) ? DilatedFlops(length) : denseFlops,
                GemmGflops = gemm,
                PeakGflops = peak,
                Note = skipped
                    ? $"not run: [H,L,L] scores need {PeakMemory.Format(scoreBytes)} of {PeakMemory.Format(available)}"
                    : null,
            });
        }
    }

    /// <summary>Work of the dilated kernel: per branch each head attends L/r queries to s/r keys (2 GEMMs).</summary>
    private static double DilatedFlops(long length)
    {
        var c = SlideEncoderConfig.ProvGigaPath;
        double flops = 0;
        for (int b = 0; b < c.SegmentLengths.Count; b++)
        {
            double s = Math.Min(c.SegmentLengths[b], length), r = c.DilationRatios[b];
            flops += 4.0 * Heads * Math.Ceiling(length / s) * s / r * (s / r) * HeadDim;
        }
        return flops;
    }

    [Benchmark]
    public void Dilated()
    {
        _ran = nameof(Dilated);
        if (_measured.Next()) RunDilated();
    }

    private void RunDilated()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var c = SlideEncoderConfig.ProvGigaPath;
        DilatedAttentionKernel.Forward(_q!, _k!, _v!, c.SegmentLengths, c.DilationRatios, AttentionBlocking.Default);
    }

    [Benchmark]
    public void DenseSdpa()
    {
        _ran = nameof(DenseSdpa);
        if (_measured.Next()) RunDenseSdpa();
    }

    private void RunDenseSdpa()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        nn.functional.scaled_dot_product_attention(_q!.transpose(1, 2), _k!.transpose(1, 2), _v!.transpose(1, 2));
    }

    [Benchmark]
    public void DenseNaive()
    {
        _ran = nameof(DenseNaive);
        if (_measured.Next()) RunDenseNaive();
    }

    private void RunDenseNaive()
    {
        if (!_naiveFits) return;
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var q = _q!.transpose(1, 2);
        var scores = q.matmul(_k!.transpose(1, 2).transpose(2, 3)).mul_(1.0 / Math.Sqrt(HeadDim));
        scores.softmax(-1).matmul(_v!.transpose(1, 2));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_ran.Length > 0) CaseRecords.SetPeak(this, _ran, PeakMemory.PeakBytes());
        _q?.Dispose();
        _k?.Dispose();
        _v?.Dispose();
    }
}
