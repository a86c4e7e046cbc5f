using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Runtime;

/// <summary>A GEMM rate measured by <see cref="MachineReport"/>'s probe.</summary>
internal sealed record GemmMeasurement(string Device, string DType, int N, double Gflops);

/// <summary>
/// What this machine runs fast, for logs and bug reports: the engine's versions, the CPU and its features, the dtypes it
/// runs at full speed, the CUDA devices and, when probed, the measured fp32 FMA peak and libtorch GEMM rates. Made by
/// <see cref="Collect"/>; read as text (<see cref="ToText"/>) or JSON (<see cref="ToJsonText"/>).
/// </summary>
public sealed class MachineReport
{
    private MachineReport(CpuFeatures cpu, int torchThreads, Bf16Verdict cpuBf16, int cudaDevices, FmaPeakResult? fmaPeak, IReadOnlyList<GemmMeasurement> gemm)
    {
        Cpu = cpu;
        TorchThreads = torchThreads;
        CpuBf16 = cpuBf16;
        CudaDevices = cudaDevices;
        FmaPeak = fmaPeak;
        Gemm = gemm;
    }

    internal CpuFeatures Cpu { get; }
    internal int TorchThreads { get; }
    internal Bf16Verdict CpuBf16 { get; }

    internal int CudaDevices { get; }

    internal FmaPeakResult? FmaPeak { get; }
    internal IReadOnlyList<GemmMeasurement> Gemm { get; }

    /// <summary>Collects the report; <paramref name="probe"/> adds the FMA peak and GEMM rates (a few seconds).</summary>
    /// <param name="probe">Also measure the fp32 FMA peak and libtorch's float32/bfloat16 GEMM rates.</param>
    public static MachineReport Collect(bool probe = false)
    {
        int cudaDevices = cuda.is_available() ? cuda.device_count() : 0;
        var report = new MachineReport(CpuFeatures.Current, torch.get_num_threads(), DTypeAdvisor.Bf16Here(), cudaDevices, null, []);
        if (!probe) return report;
        var gemm = new List<GemmMeasurement>();
        var devices = cudaDevices > 0 ? new[] { CPU, CUDA } : new[] { CPU };
        foreach (var device in devices)
        {
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            {
                // Emulated bfloat16 stays at a small size (a 2048³ product would take ~50 s there); fast dtypes
                // are measured at 2048³, the benchmarks' roofline size.
                bool fast = dtype == ScalarType.Float32 || device.type == DeviceType.CUDA || report.CpuBf16.Fast;
                var (n, gflops) = fast
                    ? (2048, GemmRate.Gflops(device, dtype, 2048, repetitions: 3))
                    : GemmRate.Bounded(device, dtype, maxN: 2048, perMatmul: TimeSpan.FromSeconds(0.5));
                gemm.Add(new GemmMeasurement(device.type == DeviceType.CUDA ? "cuda" : "cpu", DeviceSelection.Name(dtype), n, gflops));
            }
        }
        return new MachineReport(report.Cpu, report.TorchThreads, report.CpuBf16, cudaDevices, Runtime.FmaPeak.Measure(TimeSpan.FromSeconds(0.25)), gemm);
    }

    /// <summary>dtypes that run at full speed on the CPU, fastest last.</summary>
    internal IReadOnlyList<string> CpuFastDTypes => CpuBf16.Fast ? ["float32", "bfloat16"] : ["float32"];

    /// <summary>The dtype the automatic choice picks on the CPU.</summary>
    internal string CpuAuto => CpuBf16.Fast ? "bfloat16" : "float32";

    internal JsonObject ToJson()
    {
        var features = new JsonObject();
        var on = Cpu.Names();
        foreach (var name in CpuFeatures.KnownNames) features[name] = on.Contains(name);
        var dtypes = new JsonObject
        {
            ["cpu"] = new JsonObject
            {
                ["fast"] = new JsonArray([.. CpuFastDTypes.Select(d => (JsonNode)d)]),
                ["auto"] = CpuAuto,
                ["bfloat16"] = CpuBf16.Why,
            },
        };
        if (CudaDevices > 0)
            dtypes["cuda"] = new JsonObject { ["fast"] = new JsonArray("float32", "bfloat16", "float16"), ["auto"] = "bfloat16" };
        var json = new JsonObject
        {
            ["engine"] = new JsonObject
            {
                ["version"] = EngineInfo.Version,
                ["torchsharp"] = EngineInfo.TorchSharpVersion,
                ["backend"] = DeviceSelection.BuildBackend,
            },
            ["cpu"] = new JsonObject
            {
                ["model"] = Cpu.Model,
                ["architecture"] = Cpu.Architecture.ToString().ToLowerInvariant(),
                ["logical_cores"] = Cpu.LogicalCores,
                ["torch_threads"] = TorchThreads,
                ["features"] = features,
            },
            ["dtypes"] = dtypes,
            ["cuda"] = new JsonObject { ["available"] = CudaDevices > 0, ["devices"] = CudaDevices },
            ["probe"] = null,
        };
        if (FmaPeak is { } peak)
        {
            json["probe"] = new JsonObject
            {
                ["fma_peak_gflops"] = Math.Round(peak.Gflops, 1),
                ["fma_isa"] = peak.Isa,
                ["fma_lanes"] = peak.Lanes,
                ["fma_threads"] = peak.Threads,
                ["fma_jit_optimized"] = peak.Optimized,
                ["gemm"] = new JsonArray([.. Gemm.Select(g => (JsonNode)new JsonObject
                {
                    ["device"] = g.Device,
                    ["dtype"] = g.DType,
                    ["n"] = g.N,
                    ["gflops"] = Math.Round(g.Gflops, 1),
                })]),
            };
        }
        return json;
    }

    /// <summary>The report as indented JSON (for scripts).</summary>
    public string ToJsonText() => ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>The report as lines of text for a person.</summary>
    public string ToText()
    {
        var on = Cpu.Names();
        var absent = CpuFeatures.KnownNames.Where(n => !on.Contains(n) && RelevantHere(n)).ToList();
        var text = new StringBuilder();
        text.AppendLine($"{EngineInfo.Name} {EngineInfo.Version}, TorchSharp {EngineInfo.TorchSharpVersion} (backend {DeviceSelection.BuildBackend})");
        text.AppendLine($"CPU:          {Cpu.Model} ({Cpu.Architecture.ToString().ToLowerInvariant()}), {Cpu.LogicalCores} logical cores, libtorch {TorchThreads} threads");
        text.AppendLine($"features:     {(on.Count > 0 ? string.Join(" ", on) : "none of interest")}{(absent.Count > 0 ? $" (not: {string.Join(" ", absent)})" : "")}");
        text.AppendLine($"fast on cpu:  {string.Join(", ", CpuFastDTypes)}; bfloat16: {CpuBf16.Why}; dtype auto = {CpuAuto}");
        text.AppendLine(CudaDevices > 0
            ? $"CUDA:         {CudaDevices} device(s); fast: float32, bfloat16, float16; dtype auto = bfloat16"
            : $"CUDA:         not available (backend {DeviceSelection.BuildBackend})");
        if (FmaPeak is { } peak)
        {
            text.AppendLine($"FMA peak:     {peak.Gflops:F1} GFLOP/s fp32 ({peak.Isa}, {peak.Lanes} lanes, {peak.Threads} threads, register-resident loop)" +
                               (peak.Optimized ? "" : " - Debug build: JIT optimisations off, not the hardware's peak"));
            foreach (var g in Gemm)
            {
                string ofPeak = g.Device == "cpu" && g.DType == "float32" && peak.Gflops > 0 ? $", {g.Gflops / peak.Gflops:P0} of the FMA peak" : "";
                text.AppendLine($"GEMM:         {g.Device} {g.DType,-8} {g.N}³: {g.Gflops,8:F1} GFLOP/s{ofPeak}");
            }
        }
        return text.ToString();
    }

    private bool RelevantHere(string feature) =>
        Cpu.Architecture is System.Runtime.InteropServices.Architecture.X64 or System.Runtime.InteropServices.Architecture.X86
            ? feature is not ("asimd" or "bf16")
            : feature is "asimd" or "bf16";
}
