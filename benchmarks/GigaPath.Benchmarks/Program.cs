using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace GigaPath.Benchmarks;

/// <summary>
/// Runs the BenchmarkDotNet suite in-process (TorchSharp's native state and the roofline measurement must live in
/// the benchmark's own process). Extra options: <c>--job short|default</c> (short: 1 warm-up, 2 measured iterations,
/// reduced sizes; the whole suite fits in ~15 minutes on 2 cores).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var rest = new List<string>();
        string job = "default";
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--job" && i + 1 < args.Length) job = args[++i];
            else rest.Add(args[i]);
        }
        SuiteSettings.Short = job.Equals("short", StringComparison.OrdinalIgnoreCase);
        bool tuned = GigaPath.Runtime.NativeAllocator.Configure();

        var baseJob = Job.Default
            .WithToolchain(new InProcessEmitToolchain(TimeSpan.FromHours(3), logOutput: true))
            .WithStrategy(RunStrategy.Monitoring)
            .WithInvocationCount(1)
            .WithUnrollFactor(1)
            .WithLaunchCount(1);
        baseJob = SuiteSettings.Short
            ? baseJob.WithWarmupCount(1).WithIterationCount(2).WithId("short")
            : baseJob.WithWarmupCount(1).WithIterationCount(5).WithId("default");

        var config = ManualConfig.CreateEmpty()
            .AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default)
            .AddExporter(BenchmarkDotNet.Exporters.MarkdownExporter.GitHub)
            .AddColumnProvider(DefaultColumnProviders.Instance)
            .AddColumn(RecordColumn.All().ToArray())
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddJob(baseJob)
            .WithOptions(ConfigOptions.DisableOptimizationsValidator | ConfigOptions.JoinSummary);

        Console.WriteLine(DeviceParams.Describe());
        var cpu = GigaPath.Runtime.CpuFeatures.Current;
        Console.WriteLine($"CPU: {cpu.Model}, {cpu.LogicalCores} logical cores, features {string.Join(" ", cpu.Names())}, libtorch {TorchSharp.torch.get_num_threads()} threads");
        if (DeviceParams.SkipNote is { } skip) Console.WriteLine(skip);
        Console.WriteLine(tuned ? "malloc: tuned for tensors (GIGAPATH_MALLOC_TUNING=0 to compare)" : "malloc: system defaults");
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(rest.ToArray(), config);
        if (Environment.GetEnvironmentVariable("GIGAPATH_BENCH_DEBUG") == "1") foreach (var k in CaseRecords.Keys) Console.WriteLine("record " + k);
        Console.WriteLine();
        Console.WriteLine("Roofline (GEMM 2048^3, best rate seen in this run; each case is compared with the rate measured just before it):");
        foreach (var ((device, dtype), gflops) in Roofline.Measured.OrderBy(k => k.Key.Device).ThenBy(k => k.Key.DType))
            Console.WriteLine($"  {device,-6} {GigaPath.Runtime.DeviceSelection.Name(dtype),-9} {gflops,8:F1} GFLOP/s");
        if (Roofline.BestFmaPeak > 0)
            Console.WriteLine($"Hardware fp32 FMA peak (register-resident loop, all cores, best in this run): {Roofline.BestFmaPeak:F1} GFLOP/s");
        return 0;
    }
}

public static class SuiteSettings
{
    public static bool Short { get; set; }

    /// <summary>Slide sizes (tiles): GIGAPATH_BENCH_SLIDE_TILES (comma-separated) when set, else the job's defaults.</summary>
    public static IEnumerable<int> SlideTiles(int[] shortJob, int[] defaultJob) =>
        Environment.GetEnvironmentVariable("GIGAPATH_BENCH_SLIDE_TILES") is { Length: > 0 } custom
            ? custom.Split(',').Select(int.Parse)
            : Short ? shortJob : defaultJob;
}

/// <summary>The Device and DType parameter values: CUDA rows appear only where a GPU and the CUDA backend exist.</summary>
public static class DeviceParams
{
    public static IEnumerable<string> Devices()
    {
        yield return "cpu";
        if (TorchSharp.torch.cuda.is_available()) yield return "cuda";
    }

    /// <summary>float32, bfloat16 (and float16 on CUDA), or the comma-separated list in GIGAPATH_BENCH_DTYPES.</summary>
    public static IEnumerable<string> DTypes()
    {
        IEnumerable<string> dtypes = Environment.GetEnvironmentVariable("GIGAPATH_BENCH_DTYPES") is { Length: > 0 } custom
            ? custom.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            : TorchSharp.torch.cuda.is_available() ? ["float32", "bfloat16", "float16"] : ["float32", "bfloat16"];
        // bfloat16 without bf16 hardware is refused by the engine (and would take minutes per case): no such rows.
        return SkipCpuBFloat16 ? dtypes.Where(d => GigaPath.Runtime.DeviceSelection.ParseDType(d) != TorchSharp.torch.ScalarType.BFloat16) : dtypes;
    }

    /// <summary>CPU-only machine whose CPU has no bfloat16 matrix hardware.</summary>
    private static bool SkipCpuBFloat16 => !TorchSharp.torch.cuda.is_available() && !GigaPath.Runtime.DTypeAdvisor.Bf16Here().Fast;

    /// <summary>The note printed at the start of a run on such a machine, or null.</summary>
    public static string? SkipNote => SkipCpuBFloat16
        ? $"bfloat16 rows skipped: {GigaPath.Runtime.DTypeAdvisor.Bf16Here().Why} on {GigaPath.Runtime.CpuFeatures.Current.Model}; libtorch would emulate bfloat16 ({GigaPath.Runtime.DTypeAdvisor.ExpectedSlowdown})"
        : null;

    public static string Describe() => TorchSharp.torch.cuda.is_available()
        ? $"Devices: cpu, cuda ({TorchSharp.torch.cuda.device_count()} GPU); dtypes float32, bfloat16, float16"
        : $"Devices: cpu (cuda: not available — backend '{GigaPath.Runtime.DeviceSelection.BuildBackend}', no GPU visible; CUDA rows are skipped); dtypes float32, bfloat16 (float16 needs CUDA)";
}

/// <summary>
/// Cases that take seconds to minutes each (whole slides, attention at 10k+ tokens): no warm-up iteration (the
/// benchmark warms up in its setup instead) and fewer measured iterations - 1 in the short job, 3 in the default
/// one - so that the suite's time goes to covering sizes rather than repeating minute-long runs.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class LongCasesAttribute : JobMutatorConfigBaseAttribute
{
    public LongCasesAttribute() : base(Job.Default.WithWarmupCount(0).WithIterationCount(Iterations))
    {
    }

    public static int Iterations => SuiteSettings.Short ? 1 : 3;
}

/// <summary>
/// BenchmarkDotNet's memory diagnoser runs every case once more after the measured iterations, to count managed
/// allocations. For a case that takes minutes (a dense 50k-token slide: 15 minutes) that doubles the suite's time, so
/// long benchmarks return at once from calls beyond their measured iterations; their Allocated column then reads "-"
/// (their managed allocations are a few MB of TorchSharp handles; Peak RSS is the figure that matters).
/// </summary>
public sealed class MeasuredCalls
{
    private int _calls;

    /// <summary>Call at the start of the benchmark method: false once the measured iterations are done.</summary>
    public bool Next() => ++_calls <= LongCasesAttribute.Iterations;

    /// <summary>Call at the end of the setup (after any warm-up).</summary>
    public void Reset() => _calls = 0;
}
