using BenchmarkDotNet.Attributes;
using GigaPath.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Benchmarks;

/// <summary>The roofline itself: a square matmul per device and dtype.</summary>
public class GemmBenchmarks
{
    [ParamsSource(typeof(DeviceParams), nameof(DeviceParams.Devices))]
    public string Device { get; set; } = "cpu";

    [ParamsSource(typeof(DeviceParams), nameof(DeviceParams.DTypes))]
    public string DType { get; set; } = "float32";

    [Params(2048)]
    public int N { get; set; }

    private Tensor? _a, _b;
    private Device _device = CPU;

    [GlobalSetup]
    public void Setup()
    {
        _device = DeviceSelection.ParseDevice(Device);
        var dtype = DeviceSelection.ParseDType(DType);
        _a = torch.randn(N, N, device: _device).to_type(dtype);
        _b = torch.randn(N, N, device: _device).to_type(dtype);
        CaseRecords.Set(this, nameof(Matmul), new CaseRecord
        {
            FlopsPerOp = 2.0 * N * N * N,
            GemmGflops = Roofline.GemmGflops(_device, dtype),
            PeakGflops = Roofline.PeakGflops(_device, dtype),
        });
    }

    [Benchmark]
    public void Matmul()
    {
        using var _ = torch.no_grad();
        using var c = _a!.matmul(_b!);
        Roofline.Synchronize(_device);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _a?.Dispose();
        _b?.Dispose();
    }
}
