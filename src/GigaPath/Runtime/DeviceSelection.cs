using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Runtime;

/// <summary>Parses the user's --device/--dtype choices into TorchSharp values, with errors that say what is available.</summary>
public static class DeviceSelection
{
    /// <summary>"cpu" (default for null), "cuda" or "cuda:N" as a TorchSharp device; a <see cref="GigaPathException"/> says when CUDA is not available in this build or on this machine.</summary>
    public static Device ParseDevice(string? name)
    {
        switch ((name ?? "cpu").Trim().ToLowerInvariant())
        {
            case "cpu":
                return CPU;
            case "cuda":
            case var s when s.StartsWith("cuda:", StringComparison.Ordinal):
                if (!cuda.is_available())
                    throw new GigaPathException($"device '{name}' requested but CUDA is not available (this build uses TorchBackend={BuildBackend}; use {OptionNames.CudaBackend} on a machine with an NVIDIA GPU)") { Option = OptionNames.Device };
                return new Device(name!.Trim().ToLowerInvariant());
            default:
                throw new GigaPathException($"unknown device '{name}' (expected cpu, cuda or cuda:N)");
        }
    }

    /// <summary>The dtypes the encoders run in: float32, bfloat16 and float16 (CUDA only).</summary>
    public static IReadOnlyList<ScalarType> SupportedDTypes { get; } = [ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float16];

    /// <summary>
    /// Reads a dtype name: "float32" (default for null; also fp32, f32), "bfloat16" (bf16), "float16" (fp16, f16,
    /// half), or "auto": the fastest dtype <paramref name="device"/> (default cpu) runs well — bfloat16 on CUDA and on
    /// CPUs with bfloat16 matrix hardware (AVX512_BF16, AMX), float32 elsewhere.
    /// </summary>
    public static ScalarType ParseDType(string? name, Device? device = null) => (name ?? "float32").Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "fp16" or "f16" or "half" => ScalarType.Float16,
        "auto" => DTypeAdvisor.Auto(device ?? CPU, DTypeAdvisor.Bf16Here),
        _ => throw new GigaPathException($"unknown dtype '{name}' (expected float32, bfloat16, float16 or auto)"),
    };

    /// <summary>
    /// Refuses a device this build or machine cannot run (CUDA without the CUDA backend or a GPU, anything but CPU or
    /// CUDA), float16 on CPU: its matmuls are emulated and unusably slow (a 2048³ GEMM took 77 s here), and bfloat16
    /// on a CPU without bfloat16 matrix hardware (about 300× slower than float32) unless <paramref name="allowSlowDType"/>.
    /// </summary>
    public static void EnsureSupported(Device device, ScalarType dtype, bool allowSlowDType = false)
    {
        if (device is null)
            throw new GigaPathException("no device given (use torch.CPU, or a CUDA device on a CUDA build)");
        if (!SupportedDTypes.Contains(dtype))
            throw new GigaPathException($"dtype {dtype} is not supported (use float32, bfloat16 or float16)");
        if (device.type == DeviceType.CUDA && !cuda.is_available())
            throw new GigaPathException($"device {device} requested but CUDA is not available (this build uses TorchBackend={BuildBackend}, or no GPU is visible)");
        if (device.type is not (DeviceType.CPU or DeviceType.CUDA))
            throw new GigaPathException($"device '{device}' is not supported (use cpu, cuda or cuda:N)");
        if (dtype == ScalarType.Float16 && device.type == DeviceType.CPU)
            throw new GigaPathException($"dtype float16 is only supported on CUDA: float16 matrix products on the CPU are orders of magnitude slower (no fast fp16 GEMM); use float32 or {OptionNames.DType} auto (bfloat16 where the CPU has bf16 hardware), or {OptionNames.Device} cuda") { Option = OptionNames.DType };
        if (!allowSlowDType && DTypeAdvisor.Refusal(device, dtype, CpuFeatures.Current, DTypeAdvisor.Bf16Here) is { } refusal)
            throw new GigaPathException(refusal) { Option = OptionNames.DType };
    }

    /// <summary>The lower-case name of <paramref name="dtype"/> as written in output metadata ("float32", "bfloat16", "float16").</summary>
    public static string Name(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        _ => dtype.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// For a message about NaN or infinity coming out of a model: in a reduced precision an overflow is a possible cause
    /// besides broken weights; in float32 it is not worth suggesting.
    /// </summary>
    internal static string OverflowHint(ScalarType dtype) =>
        dtype == ScalarType.Float32 ? "" : $", or {Name(dtype)} overflowed (try {OptionNames.DType} float32)";

    /// <summary>The TorchSharp backend this library was built with: "cpu" or "cuda".</summary>
    public static string BuildBackend =>
        typeof(DeviceSelection).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .OfType<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "TorchBackend")?.Value ?? "cpu";
}
