using System.Runtime.InteropServices;
using GigaPath.Runtime;
using GigaPath.Tests.Cli;
using GigaPath.Tests.Models.Tile;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Runtime;

/// <summary>Which dtypes a CPU runs fast, decided from (faked) features; the real detection against /proc/cpuinfo.</summary>
public class DTypeAdvisorTests
{
    private static CpuFeatures X64(bool avx512 = false, bool avx512Bf16 = false, bool amx = false) => new()
    {
        Model = "test CPU",
        LogicalCores = 2,
        Architecture = Architecture.X64,
        Avx2 = true,
        Fma = true,
        Avx512F = avx512,
        Avx512Bf16 = avx512Bf16,
        AmxBf16 = amx,
        AmxTile = amx,
    };

    private static CpuFeatures Arm(bool bf16) => new()
    {
        Model = "test Arm CPU",
        LogicalCores = 4,
        Architecture = Architecture.Arm64,
        ArmAdvSimd = true,
        ArmBf16 = bf16,
    };

    /// <summary>A CUDA device value without initialising CUDA (torch.CUDA would, and fails on a machine without it).</summary>
    private static readonly Device Cuda = new(DeviceType.CUDA, 0);

    private static double NoProbe() => throw new AssertionException("the flags are conclusive on x86: no probe may run");

    private static string? Refusal(CpuFeatures cpu, Func<double>? probe = null, ScalarType dtype = ScalarType.BFloat16) =>
        DTypeAdvisor.Refusal(CPU, dtype, cpu, () => DTypeAdvisor.Bf16OnCpu(cpu, probe ?? NoProbe));

    private static ScalarType Auto(Device device, CpuFeatures cpu, Func<double>? probe = null) =>
        DTypeAdvisor.Auto(device, () => DTypeAdvisor.Bf16OnCpu(cpu, probe ?? NoProbe));

    [Test]
    public void Avx2OnlyRefusesBFloat16WithTheSlowdownAndTheWayOut()
    {
        var refusal = Refusal(X64());
        Assert.That(refusal, Is.Not.Null);
        Assert.That(refusal, Does.Contain("bfloat16").And.Contain("300×").And.Contain("no AVX512_BF16")
            .And.Contain("EncoderOptions.DType float32").And.Contain("or auto").And.Contain("EncoderOptions.AllowSlowDType").And.Contain("test CPU")
            .And.Not.Contain("--"));
        Assert.That(Auto(CPU, X64()), Is.EqualTo(ScalarType.Float32));
    }

    [Test]
    public void Avx512WithoutBf16IsRefusedToo()
    {
        Assert.That(Refusal(X64(avx512: true)), Does.Contain("no bfloat16 matrix hardware"));
        Assert.That(Auto(CPU, X64(avx512: true)), Is.EqualTo(ScalarType.Float32));
    }

    [Test]
    public void Bf16FlagWithoutUsableAvx512IsNotEnough()
    {
        // CPUID may report AVX512_BF16 while the OS does not save the ZMM registers (Avx512F.IsSupported false).
        Assert.That(Refusal(X64(avx512: false, avx512Bf16: true)), Is.Not.Null);
    }

    [Test]
    public void Avx512Bf16IsAllowedAndAutoPicksIt()
    {
        Assert.That(Refusal(X64(avx512: true, avx512Bf16: true)), Is.Null);
        Assert.That(Auto(CPU, X64(avx512: true, avx512Bf16: true)), Is.EqualTo(ScalarType.BFloat16));
        Assert.That(DTypeAdvisor.Bf16OnCpu(X64(avx512: true, avx512Bf16: true), NoProbe).Why, Is.EqualTo("AVX512_BF16"));
    }

    [Test]
    public void AmxIsAllowedAndAutoPicksIt()
    {
        Assert.That(Refusal(X64(amx: true)), Is.Null);
        Assert.That(Auto(CPU, X64(amx: true)), Is.EqualTo(ScalarType.BFloat16));
        Assert.That(DTypeAdvisor.Bf16OnCpu(X64(avx512: true, avx512Bf16: true, amx: true), NoProbe).Why, Is.EqualTo("AMX-BF16"));
    }

    [Test]
    public void Float32IsNeverRefusedAndCudaAutoIsBFloat16()
    {
        Assert.That(Refusal(X64(), dtype: ScalarType.Float32), Is.Null);
        Assert.That(DTypeAdvisor.Refusal(Cuda, ScalarType.BFloat16, X64(), () => throw new AssertionException("no CPU verdict for CUDA")), Is.Null);
        Assert.That(DTypeAdvisor.Auto(Cuda, () => throw new AssertionException("no CPU verdict for CUDA")), Is.EqualTo(ScalarType.BFloat16));
    }

    [Test]
    public void ArmIsDecidedByTheTimedProbe()
    {
        // The Arm BF16 flag does not say whether libtorch's build uses it: the probe decides, and its figure is quoted.
        var slow = Refusal(Arm(bf16: true), probe: () => 240.0);
        Assert.That(slow, Does.Contain("240× slower than float32 (measured here").And.Contain("although the CPU reports bf16"));
        Assert.That(Auto(CPU, Arm(bf16: false), () => 240.0), Is.EqualTo(ScalarType.Float32));
        Assert.That(Refusal(Arm(bf16: true), probe: () => 0.6), Is.Null);
        Assert.That(Auto(CPU, Arm(bf16: true), () => 0.6), Is.EqualTo(ScalarType.BFloat16));
    }

    [Test]
    public void HiddenFeaturesAreOffAndUnknownNamesAreNamed()
    {
        var all = X64(avx512: true, avx512Bf16: true, amx: true);
        var hidden = all.Without("avx512_bf16, AMX_BF16");
        Assert.That(hidden.Avx512Bf16 || hidden.AmxBf16, Is.False);
        Assert.That(hidden.Avx512F && hidden.AmxTile, Is.True);
        Assert.That(() => all.Without("avx512_bf17"), Throws.TypeOf<GigaPathException>().With.Message.Contains("avx512_bf17").And.Message.Contains(CpuFeatures.HideVariable));
    }

    [Test]
    public void DetectionAgreesWithProcCpuInfo()
    {
        Assume.That(OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64, "/proc/cpuinfo flags on Linux x64");
        var flags = CpuFeatures.ProcCpuInfoFlags();
        var cpu = CpuFeatures.Detect();
        Assert.Multiple(() =>
        {
            Assert.That(cpu.Avx2, Is.EqualTo(flags.Contains("avx2")), "avx2");
            Assert.That(cpu.Fma, Is.EqualTo(flags.Contains("fma")), "fma");
            Assert.That(cpu.Avx512F, Is.EqualTo(flags.Contains("avx512f")), "avx512f");
            Assert.That(cpu.Avx512Bf16, Is.EqualTo(flags.Contains("avx512_bf16")), "avx512_bf16");
            Assert.That(cpu.AmxBf16, Is.EqualTo(flags.Contains("amx_bf16")), "amx_bf16");
            Assert.That(cpu.AmxTile, Is.EqualTo(flags.Contains("amx_tile")), "amx_tile");
            Assert.That(cpu.LogicalCores, Is.EqualTo(Environment.ProcessorCount));
        });
        // What the engine then does with bfloat16 on this machine follows from the same flags.
        bool bf16Hardware = flags.Contains("avx512_bf16") || flags.Contains("amx_bf16");
        Assert.That(DTypeAdvisor.Bf16Here().Fast, Is.EqualTo(bf16Hardware));
        Assert.That(DeviceSelection.ParseDType("auto"), Is.EqualTo(bf16Hardware ? ScalarType.BFloat16 : ScalarType.Float32));
        if (bf16Hardware)
            Assert.That(() => DeviceSelection.EnsureSupported(CPU, ScalarType.BFloat16), Throws.Nothing);
        else
            Assert.That(() => DeviceSelection.EnsureSupported(CPU, ScalarType.BFloat16), Throws.TypeOf<GigaPathException>());
    }

    [Test]
    public void EmbedTilesRefusesBFloat16FastWithoutBf16Hardware()
    {
        var dir = FixturePaths.TempDir("dtype-refusal");
        try
        {
            var output = Path.Combine(dir, "out.safetensors");
            string pixels = FixturePaths.Get("tile_encoder_tiny", "input.safetensors");
            using (new HiddenCpuFeatures("avx512_bf16,amx_bf16,amx_tile,bf16"))
            {
                var refused = CliInvocation.Run("embed-tiles", "--model", TinyTileFixture.Dir, "--out", output, "--pixels", pixels, "--dtype", "bfloat16");
                Assert.That(refused.ExitCode, Is.EqualTo(2), refused.ToString());
                Assert.That(refused.Error, Does.Contain("bfloat16 would run").And.Contain("slower than float32").And.Contain("--allow-slow-dtype"));
                Assert.That(File.Exists(output), Is.False, "refused before any output");

                var auto = CliInvocation.Run("embed-tiles", "--model", TinyTileFixture.Dir, "--out", output, "--pixels", pixels, "--dtype", "auto");
                Assert.That(auto.ExitCode, Is.EqualTo(0), auto.ToString());
                using (var result = SafeTensorsFile.Open(output))
                    Assert.That(result.Metadata["dtype"], Is.EqualTo("float32"), "auto falls back to float32");

                var forced = CliInvocation.Run("embed-tiles", "--model", TinyTileFixture.Dir, "--out", output, "--pixels", pixels, "--dtype", "bfloat16", "--allow-slow-dtype");
                Assert.That(forced.ExitCode, Is.EqualTo(0), forced.ToString());
                using (var result = SafeTensorsFile.Open(output))
                    Assert.That(result.Metadata["dtype"], Is.EqualTo("bfloat16"), "the override runs bfloat16");
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void ServeRefusesItTooUnlessForced()
    {
        using var hidden = new HiddenCpuFeatures("avx512_bf16,amx_bf16,amx_tile,bf16");
        var options = new GigaPath.Server.Hosting.ServerOptions { ModelDir = TinyTileFixture.Dir, DType = "bfloat16" };
        Assert.That(options.Validate, Throws.TypeOf<GigaPathException>().With.Message.Contains("EncoderOptions.AllowSlowDType"));
        Assert.That((options with { AllowSlowDType = true }).Validate, Throws.Nothing);
        Assert.That((options with { DType = "auto" }).Validate, Throws.Nothing);
    }

    [Test]
    public void LibraryUsersGetTheSameCheck()
    {
        using var hidden = new HiddenCpuFeatures("avx512_bf16,amx_bf16,amx_tile,bf16");
        Assert.That(() => GigaPath.Models.Tile.TileEncoder.Load(TinyTileFixture.Dir, new() { DType = ScalarType.BFloat16 }),
            Throws.TypeOf<GigaPathException>().With.Message.Contains("AllowSlowDType"));
        Assert.That(DeviceSelection.ParseDType("auto", CPU), Is.EqualTo(ScalarType.Float32));
        Assert.That(() => DeviceSelection.ParseDType("fastest"), Throws.TypeOf<GigaPathException>().With.Message.Contains("auto"));
    }
}
