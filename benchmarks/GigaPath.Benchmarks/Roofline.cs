using System.Collections.Concurrent;
using GigaPath.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Benchmarks;

/// <summary>
/// The machine's measured ceilings per (device, dtype), taken in the same process as the model benchmarks so that
/// each model figure can be stated as a fraction of what this machine actually reaches right now: libtorch's GEMM
/// rate (what a GEMM-bound model could reach through libtorch) and the hardware's fp32 FMA peak (what the metal can
/// do: a register-resident FMA loop on every core, <see cref="FmaPeak"/>).
/// </summary>
public static class Roofline
{
    private static readonly ConcurrentDictionary<(string, ScalarType), double> Cache = new();
    private static double _bestFmaPeak;

    /// <summary>
    /// GFLOP/s of a square matmul (best of several repetitions), measured afresh at each call - right before the case
    /// that uses it - because a shared machine's rate drifts; the summary keeps the best rate seen in the run.
    /// </summary>
    public static double GemmGflops(Device device, ScalarType dtype, int n = 2048, int repetitions = 5)
    {
        var rate = GemmRate.Gflops(device, dtype, n, repetitions);
        Cache.AddOrUpdate((device.ToString(), dtype), rate, (_, old) => Math.Max(old, rate));
        return rate;
    }

    /// <summary>
    /// The hardware peak for a (device, dtype) case, in GFLOP/s, measured afresh like the GEMM rate: on the CPU the
    /// fp32 FMA peak of all cores for float32, and twice that for bfloat16 with AVX512_BF16 (VDPBF16PS does two bf16
    /// products per fp32 lane; .NET has no intrinsic for it, so this one is the nominal rate). 0 (no column) on CUDA
    /// and with AMX, whose tile peak this loop cannot measure.
    /// </summary>
    public static double PeakGflops(Device device, ScalarType dtype)
    {
        if (device.type != DeviceType.CPU || dtype is not (ScalarType.Float32 or ScalarType.BFloat16)) return 0;
        if (dtype == ScalarType.BFloat16 && (CpuFeatures.Current.AmxBf16 || !DTypeAdvisor.Bf16Here().Fast)) return 0;
        double fp32 = FmaPeak.Measure(TimeSpan.FromSeconds(0.2)).Gflops;
        _bestFmaPeak = Math.Max(_bestFmaPeak, fp32);
        return dtype == ScalarType.BFloat16 ? 2 * fp32 : fp32;
    }

    public static void Synchronize(Device device) => GemmRate.Synchronize(device);

    public static IReadOnlyDictionary<(string Device, ScalarType DType), double> Measured => Cache;

    /// <summary>The best fp32 FMA peak measured in this run (0 when no CPU case ran).</summary>
    public static double BestFmaPeak => _bestFmaPeak;
}
