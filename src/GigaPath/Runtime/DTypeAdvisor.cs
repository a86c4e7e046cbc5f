using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Runtime;

/// <summary>Whether bfloat16 matmuls are fast on this CPU, and how that was decided.</summary>
/// <param name="Fast">bfloat16 runs at least as fast as float32 here (bf16 matrix hardware).</param>
/// <param name="Why">The evidence, for messages and <c>gigapath info</c>.</param>
/// <param name="MeasuredSlowdown">bfloat16 time / float32 time of a small GEMM, where a timed probe decided.</param>
internal sealed record Bf16Verdict(bool Fast, string Why, double? MeasuredSlowdown = null);

/// <summary>
/// Decides which dtypes a device runs well: <c>--dtype auto</c>, and the refusal of bfloat16 on CPUs that would
/// emulate it. Pure functions of the CPU's features (and a probe where they are inconclusive), so the decision is
/// tested with faked features; <see cref="DeviceSelection"/> applies it to this machine.
/// </summary>
internal static class DTypeAdvisor
{
    /// <summary>
    /// Without bf16 hardware libtorch's bfloat16 GEMM ran ~280× slower than float32 (2048³: 53 s against 0.19 s on
    /// two cores of an AVX2-only AMD Zen 3; 0.3 against 90 GFLOP/s). Stated in the refusal when no probe ran.
    /// </summary>
    public const string ExpectedSlowdown = "about 300× slower than float32 (a 2048³ matrix product took 53 s in bfloat16 against 0.19 s in float32 on an AVX2-only AMD Zen 3)";

    /// <summary>A probe slower than this (bf16 time / fp32 time) means bfloat16 is emulated.</summary>
    public const double SlowdownThreshold = 2.0;

    private static readonly Lazy<double> ProbedSlowdown = new(() =>
        GemmRate.Gflops(CPU, ScalarType.Float32, 256, 3) / GemmRate.Gflops(CPU, ScalarType.BFloat16, 256, 3));

    /// <summary>The verdict for this machine (the probe, where one is needed, runs once per process: ~0.5 s when emulated).</summary>
    public static Bf16Verdict Bf16Here() => Bf16OnCpu(CpuFeatures.Current, () => ProbedSlowdown.Value);

    /// <summary>The bfloat16 verdict from the flags where they are conclusive (x86), else from <paramref name="probeSlowdown"/>.</summary>
    public static Bf16Verdict Bf16OnCpu(CpuFeatures cpu, Func<double> probeSlowdown)
    {
        if (cpu.Bf16Conclusive)
        {
            if (cpu.AmxBf16 && cpu.AmxTile) return new(true, "AMX-BF16");
            if (cpu.Avx512F && cpu.Avx512Bf16) return new(true, "AVX512_BF16");
            return new(false, "no bfloat16 matrix hardware (no AVX512_BF16, no AMX-BF16)");
        }
        double slowdown = probeSlowdown();
        return slowdown <= SlowdownThreshold
            ? new(true, $"timed probe: bfloat16 GEMM {slowdown:F2}× the float32 time", slowdown)
            : new(false, $"no fast bfloat16 GEMM (timed probe: {slowdown:F0}× the float32 time{(cpu.ArmBf16 ? ", although the CPU reports bf16" : "")})", slowdown);
    }

    /// <summary>The fastest dtype the device runs well: bfloat16 on CUDA and on CPUs with bf16 hardware, else float32.</summary>
    public static ScalarType Auto(Device device, Func<Bf16Verdict> cpuVerdict) =>
        device.type == DeviceType.CUDA || cpuVerdict().Fast ? ScalarType.BFloat16 : ScalarType.Float32;

    /// <summary>Why <paramref name="dtype"/> is refused on <paramref name="device"/>, or null where it runs well.</summary>
    public static string? Refusal(Device device, ScalarType dtype, CpuFeatures cpu, Func<Bf16Verdict> cpuVerdict)
    {
        if (device.type != DeviceType.CPU || dtype != ScalarType.BFloat16) return null;
        var verdict = cpuVerdict();
        if (verdict.Fast) return null;
        string slowdown = verdict.MeasuredSlowdown is { } measured
            ? $"{measured:F0}× slower than float32 (measured here on a 256³ matrix product)"
            : ExpectedSlowdown;
        return $"dtype bfloat16 would run {slowdown}: this CPU ({cpu.Model}) has {verdict.Why}, so libtorch emulates " +
               $"bfloat16 matrix products. Use {OptionNames.DType} float32 (the default, exact) or auto; " +
               $"{OptionNames.AllowSlowDType} forces bfloat16 anyway";
    }
}
