using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace GigaPath.Runtime;

/// <summary>
/// The CPU features that decide how fast the models run here: the vector width of the FMA units and whether the CPU
/// has bfloat16 matrix hardware. Without AVX512_BF16 or AMX-BF16, libtorch's bfloat16 matmuls fall back to a scalar
/// path that is hundreds of times slower than float32 (a 2048³ GEMM: 53 s in bfloat16 against 0.19 s in float32 on an
/// AVX2-only Zen 3), so the dtype choice depends on these flags.
/// </summary>
internal sealed record CpuFeatures
{
    /// <summary>The brand string (CPUID on x86, /proc/cpuinfo elsewhere), or the architecture when neither is readable.</summary>
    public required string Model { get; init; }

    /// <summary>Logical processors this process may use (affinity and container limits included).</summary>
    public required int LogicalCores { get; init; }

    public required Architecture Architecture { get; init; }
    public bool Avx2 { get; init; }
    public bool Fma { get; init; }
    public bool Avx512F { get; init; }

    /// <summary>AVX512_BF16 (VDPBF16PS): bfloat16 dot products at the fp32 FMA rate (Cooper Lake, Sapphire Rapids, Zen 4+).</summary>
    public bool Avx512Bf16 { get; init; }

    /// <summary>AMX-BF16 and AMX-TILE: bfloat16 tile matrix multiply (Sapphire Rapids and later).</summary>
    public bool AmxBf16 { get; init; }
    public bool AmxTile { get; init; }

    /// <summary>Arm64 only: NEON (AdvSimd) and the BF16 extension (BFMMLA/BFDOT) as the OS reports it.</summary>
    public bool ArmAdvSimd { get; init; }
    public bool ArmBf16 { get; init; }

    /// <summary>
    /// True where the flags settle whether bfloat16 matmuls are fast: on x86 they do (libtorch's oneDNN kernels use
    /// AVX512_BF16/AMX when present and emulate otherwise). On Arm whether libtorch's build uses BFMMLA is not
    /// visible from the flags, so a timed probe decides (<see cref="DTypeAdvisor"/>).
    /// </summary>
    public bool Bf16Conclusive => Architecture is Architecture.X64 or Architecture.X86;

    /// <summary>bfloat16 matrix hardware as far as the flags tell (see <see cref="Bf16Conclusive"/>).</summary>
    public bool HasBf16MatrixHardware => (Avx512F && Avx512Bf16) || (AmxBf16 && AmxTile) || ArmBf16;

    /// <summary>fp32 lanes of the widest FMA the runtime will use (16 with AVX-512, 8 with AVX2+FMA, 4 with NEON).</summary>
    public int FmaLanes => Avx512F ? 16 : Avx2 && Fma ? 8 : ArmAdvSimd ? 4 : 1;

    /// <summary>Every feature name <see cref="Names"/> can return.</summary>
    public static readonly IReadOnlyList<string> KnownNames = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "asimd", "bf16"];

    /// <summary>The features as short lowercase names, Linux /proc/cpuinfo style ("avx2", "avx512_bf16", "amx_tile").</summary>
    public IReadOnlyList<string> Names()
    {
        var names = new List<string>();
        void Add(bool on, string name)
        {
            if (on) names.Add(name);
        }
        Add(Avx2, "avx2");
        Add(Fma, "fma");
        Add(Avx512F, "avx512f");
        Add(Avx512Bf16, "avx512_bf16");
        Add(AmxBf16, "amx_bf16");
        Add(AmxTile, "amx_tile");
        Add(ArmAdvSimd, "asimd");
        Add(ArmBf16, "bf16");
        return names;
    }

    private static readonly Lazy<CpuFeatures> Detected = new(Detect);

    /// <summary>
    /// Names of features to treat as absent (comma-separated, <see cref="Names"/> spelling), to see what the engine
    /// does on a CPU without them: <c>GIGAPATH_HIDE_CPU_FEATURES=avx512_bf16,amx_bf16</c>. It only changes the
    /// engine's own decisions (dtype checks, <c>gigapath info</c>, the FMA peak's vector width), not libtorch's kernels.
    /// </summary>
    public const string HideVariable = "GIGAPATH_HIDE_CPU_FEATURES";

    /// <summary>This machine's features (detected once per process), less any hidden by <see cref="HideVariable"/>.</summary>
    public static CpuFeatures Current => Detected.Value.Without(Environment.GetEnvironmentVariable(HideVariable));

    /// <summary>These features with the comma-separated <paramref name="hidden"/> ones turned off.</summary>
    public CpuFeatures Without(string? hidden)
    {
        if (string.IsNullOrWhiteSpace(hidden)) return this;
        var off = hidden.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(n => n.ToLowerInvariant()).ToHashSet();
        var unknown = off.Except(KnownNames).ToList();
        if (unknown.Count > 0)
            throw new GigaPathException($"{HideVariable}: unknown feature(s) {string.Join(", ", unknown)} (known: {string.Join(", ", KnownNames)})");
        return this with
        {
            Avx2 = Avx2 && !off.Contains("avx2"),
            Fma = Fma && !off.Contains("fma"),
            Avx512F = Avx512F && !off.Contains("avx512f"),
            Avx512Bf16 = Avx512Bf16 && !off.Contains("avx512_bf16"),
            AmxBf16 = AmxBf16 && !off.Contains("amx_bf16"),
            AmxTile = AmxTile && !off.Contains("amx_tile"),
            ArmAdvSimd = ArmAdvSimd && !off.Contains("asimd"),
            ArmBf16 = ArmBf16 && !off.Contains("bf16"),
        };
    }

    /// <summary>
    /// Reads the features through .NET's intrinsics support (which also checks that the OS saves the wider
    /// registers) and CPUID for the flags .NET has no class for: leaf 7 sub-leaf 1 EAX bit 5 (AVX512_BF16), leaf 7
    /// EDX bits 22 and 24 (AMX-BF16, AMX-TILE).
    /// </summary>
    internal static CpuFeatures Detect()
    {
        var arch = RuntimeInformation.ProcessArchitecture;
        if (X86Base.IsSupported)
        {
            var (maxLeaf, _, _, _) = X86Base.CpuId(0, 0);
            int leaf7Edx = 0, leaf71Eax = 0;
            if (maxLeaf >= 7)
            {
                (_, _, _, leaf7Edx) = X86Base.CpuId(7, 0);
                (leaf71Eax, _, _, _) = X86Base.CpuId(7, 1);
            }
            bool avx512 = System.Runtime.Intrinsics.X86.Avx512F.IsSupported;
            return new CpuFeatures
            {
                Model = X86BrandString() ?? ProcCpuInfoModel() ?? arch.ToString(),
                LogicalCores = Environment.ProcessorCount,
                Architecture = arch,
                Avx2 = System.Runtime.Intrinsics.X86.Avx2.IsSupported,
                Fma = System.Runtime.Intrinsics.X86.Fma.IsSupported,
                Avx512F = avx512,
                // The CPUID bit alone is not enough: the OS must also save the ZMM state, which Avx512F.IsSupported checks.
                Avx512Bf16 = avx512 && (leaf71Eax & (1 << 5)) != 0,
                AmxBf16 = (leaf7Edx & (1 << 22)) != 0,
                AmxTile = (leaf7Edx & (1 << 24)) != 0,
            };
        }
        var flags = ProcCpuInfoFlags();
        return new CpuFeatures
        {
            Model = ProcCpuInfoModel() ?? arch.ToString(),
            LogicalCores = Environment.ProcessorCount,
            Architecture = arch,
            ArmAdvSimd = System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported,
            ArmBf16 = flags.Contains("bf16"),
        };
    }

    private static string? X86BrandString()
    {
        var (maxExtended, _, _, _) = X86Base.CpuId(unchecked((int)0x80000000), 0);
        if ((uint)maxExtended < 0x80000004) return null;
        Span<int> registers = stackalloc int[12];
        for (int i = 0; i < 3; i++)
        {
            var (a, b, c, d) = X86Base.CpuId(unchecked((int)0x80000002) + i, 0);
            registers[4 * i] = a;
            registers[4 * i + 1] = b;
            registers[4 * i + 2] = c;
            registers[4 * i + 3] = d;
        }
        var brand = System.Text.Encoding.ASCII.GetString(MemoryMarshal.AsBytes(registers)).TrimEnd('\0').Trim();
        return brand.Length > 0 ? brand : null;
    }

    /// <summary>The first processor's flags from /proc/cpuinfo ("flags" on x86, "Features" on Arm); empty elsewhere.</summary>
    internal static HashSet<string> ProcCpuInfoFlags()
    {
        var line = ProcCpuInfoField("flags") ?? ProcCpuInfoField("Features");
        return line is null ? [] : [.. line.Split(' ', StringSplitOptions.RemoveEmptyEntries)];
    }

    private static string? ProcCpuInfoModel() => ProcCpuInfoField("model name") ?? ProcCpuInfoField("Model");

    private static string? ProcCpuInfoField(string name)
    {
        const string path = "/proc/cpuinfo";
        if (!File.Exists(path)) return null;
        foreach (var line in File.ReadLines(path))
        {
            int colon = line.IndexOf(':');
            if (colon > 0 && line[..colon].Trim() == name) return line[(colon + 1)..].Trim();
        }
        return null;
    }
}
