using System.Text.Json.Nodes;
using GigaPath.Runtime;
using GigaPath.Tests.Cli;
using NUnit.Framework;

namespace GigaPath.Tests.Runtime;

/// <summary><c>gigapath info</c>'s JSON shape, and the FMA-peak loops on every instruction set this CPU can run.</summary>
public class MachineInfoTests
{
    private static JsonObject InfoJson(params string[] extra)
    {
        var run = CliInvocation.Run(["info", "--json", .. extra]);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        return JsonNode.Parse(run.Out)!.AsObject();
    }

    [Test]
    public void JsonDescribesCpuDTypesAndCuda()
    {
        var json = InfoJson();
        var cpu = json["cpu"]!.AsObject();
        Assert.That(cpu["model"]!.GetValue<string>(), Is.Not.Empty);
        Assert.That(cpu["logical_cores"]!.GetValue<int>(), Is.EqualTo(Environment.ProcessorCount));
        Assert.That(cpu["torch_threads"]!.GetValue<int>(), Is.GreaterThan(0));
        var features = cpu["features"]!.AsObject();
        Assert.That(features.Select(f => f.Key), Is.EquivalentTo(CpuFeatures.KnownNames));
        Assert.That(features.Where(f => f.Value!.GetValue<bool>()).Select(f => f.Key), Is.EquivalentTo(CpuFeatures.Current.Names()));

        var dtypes = json["dtypes"]!["cpu"]!.AsObject();
        var fast = dtypes["fast"]!.AsArray().Select(d => d!.GetValue<string>()).ToList();
        bool bf16 = DTypeAdvisor.Bf16Here().Fast;
        Assert.That(fast, Is.EqualTo(bf16 ? new[] { "float32", "bfloat16" } : new[] { "float32" }));
        Assert.That(dtypes["auto"]!.GetValue<string>(), Is.EqualTo(bf16 ? "bfloat16" : "float32"));
        Assert.That(json["cuda"]!["available"]!.GetValue<bool>(), Is.EqualTo(TorchSharp.torch.cuda.is_available()));
        Assert.That(json["probe"], Is.Null, "no probe without --probe");
        Assert.That(json["engine"]!["version"]!.GetValue<string>(), Is.EqualTo(EngineInfo.Version));
    }

    [Test]
    public void HiddenBf16ShowsFloat32Only()
    {
        using var hidden = new HiddenCpuFeatures("avx512_bf16,amx_bf16,amx_tile,bf16");
        var dtypes = InfoJson()["dtypes"]!["cpu"]!.AsObject();
        Assert.That(dtypes["fast"]!.AsArray().Select(d => d!.GetValue<string>()), Is.EqualTo(new[] { "float32" }));
        Assert.That(dtypes["auto"]!.GetValue<string>(), Is.EqualTo("float32"));
        Assert.That(dtypes["bfloat16"]!.GetValue<string>(), Does.Contain("no bfloat16 matrix hardware"));
    }

    [Test]
    public void ProbeReportsFmaPeakAndGemmRates()
    {
        var probe = InfoJson("--probe")["probe"]!.AsObject();
        Assert.That(probe["fma_peak_gflops"]!.GetValue<double>(), Is.GreaterThan(0));
        Assert.That(probe["fma_threads"]!.GetValue<int>(), Is.EqualTo(Environment.ProcessorCount));
        Assert.That(probe["fma_lanes"]!.GetValue<int>(), Is.EqualTo(CpuFeatures.Current.FmaLanes));
        var gemm = probe["gemm"]!.AsArray().Select(g => g!.AsObject()).ToList();
        Assert.That(gemm.Where(g => g["device"]!.GetValue<string>() == "cpu").Select(g => g["dtype"]!.GetValue<string>()),
            Is.EqualTo(new[] { "float32", "bfloat16" }));
        Assert.That(gemm.All(g => g["gflops"]!.GetValue<double>() > 0 && g["n"]!.GetValue<int>() >= 256), Is.True);
    }

    [Test]
    public void TextNamesTheFeaturesAndTheAutoDType()
    {
        var run = CliInvocation.Run("info");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        Assert.That(run.Out, Does.Contain("CPU:").And.Contain("dtype auto = ").And.Contain("CUDA:"));
        foreach (var feature in CpuFeatures.Current.Names())
            Assert.That(run.Out, Does.Contain(feature));
    }

    [TestCase(null, "avx512f", 16)]
    [TestCase("avx512f", "avx2+fma", 8)]
    [TestCase("avx512f,avx2", "scalar", 1)]
    public void EveryFmaLoopRunsOnThisCpu(string? hide, string isa, int lanes)
    {
        var cpu = CpuFeatures.Detect().Without(hide);
        Assume.That(cpu.FmaLanes == lanes || isa == "scalar", $"this CPU cannot run the {isa} loop");
        var peak = FmaPeak.Measure(TimeSpan.FromMilliseconds(30), rounds: 1, threads: 1, cpu: cpu);
        Assert.That(peak.Isa, Is.EqualTo(isa));
        Assert.That(peak.Lanes, Is.EqualTo(lanes));
        Assert.That(peak.Gflops, Is.GreaterThan(0).And.LessThan(1e5), "a rate, not an artefact");
    }
}
