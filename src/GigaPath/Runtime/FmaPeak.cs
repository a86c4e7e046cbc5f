using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace GigaPath.Runtime;

/// <summary>One measurement of the CPU's fp32 fused multiply-add peak.</summary>
/// <param name="Gflops">Floating-point operations per second (an FMA counts 2) over all threads, in GFLOP/s.</param>
/// <param name="Isa">The instructions used: "avx512f" (zmm), "avx2+fma" (ymm), "asimd" (128-bit) or "scalar".</param>
/// <param name="Lanes">fp32 lanes per instruction.</param>
/// <param name="Threads">Threads run at once, one per logical core.</param>
/// <param name="Optimized">False in a Debug build of the library: the JIT then keeps the accumulators in memory and
/// the loop measures that, not the hardware.</param>
internal sealed record FmaPeakResult(double Gflops, string Isa, int Lanes, int Threads, bool Optimized);

/// <summary>
/// The hardware's fp32 peak, measured: every logical core runs a loop of independent register-resident FMAs (no
/// memory traffic), with enough accumulators to cover the FMA latency on two FMA pipes (latency 4-5 cycles × 2 pipes
/// needs 8-10 chains; 12 are used, which still fit the 16 ymm registers of AVX2 with the two constants). The
/// libtorch GEMM rate is then a fraction of this, and a model's rate can be put against the metal, not only
/// against libtorch. One implementation for <c>gigapath info --probe</c> and the benchmarks.
/// </summary>
internal static class FmaPeak
{
    private const int Chains = 12;

    /// <summary>
    /// Runs the loop on <paramref name="threads"/> threads (default: every logical core) for about
    /// <paramref name="duration"/> per round and returns the best of <paramref name="rounds"/> rounds (a shared
    /// machine's other work only ever lowers a round).
    /// </summary>
    public static FmaPeakResult Measure(TimeSpan duration, int rounds = 3, int? threads = null, CpuFeatures? cpu = null)
    {
        cpu ??= CpuFeatures.Current;
        var (kernel, isa, lanes) = Pick(cpu);
        int n = threads ?? Environment.ProcessorCount;
        long iterations = Calibrate(kernel, duration);
        double best = 0;
        for (int r = 0; r < rounds; r++)
            best = Math.Max(best, Round(kernel, iterations, n));
        double flopsPerIteration = 2.0 * Chains * lanes;
        return new FmaPeakResult(best * flopsPerIteration / 1e9, isa, lanes, n, JitOptimized);
    }

    private static bool JitOptimized { get; } =
        typeof(FmaPeak).Assembly.GetCustomAttributes(typeof(DebuggableAttribute), false).OfType<DebuggableAttribute>()
            .All(d => !d.IsJITOptimizerDisabled);

    private static (Func<long, float> Kernel, string Isa, int Lanes) Pick(CpuFeatures cpu)
    {
        if (cpu.Avx512F && Avx512F.IsSupported) return (Avx512Loop, "avx512f", 16);
        if (cpu.Avx2 && cpu.Fma && Fma.IsSupported) return (Avx2Loop, "avx2+fma", 8);
        if (cpu.ArmAdvSimd && AdvSimd.IsSupported) return (AdvSimdLoop, "asimd", 4);
        return (ScalarLoop, "scalar", 1);
    }

    /// <summary>Iterations for one thread to run about <paramref name="duration"/> (doubling until a run takes 20 ms).</summary>
    private static long Calibrate(Func<long, float> kernel, TimeSpan duration)
    {
        long iterations = 1 << 14;
        while (true)
        {
            var sw = Stopwatch.StartNew();
            Sink = kernel(iterations);
            var elapsed = sw.Elapsed;
            if (elapsed.TotalMilliseconds >= 20)
                return Math.Max(1, (long)(iterations * (duration / elapsed)));
            iterations *= 2;
        }
    }

    /// <summary>Loop iterations per second over all threads: started together, timed until the last one ends.</summary>
    private static double Round(Func<long, float> kernel, long iterations, int threads)
    {
        using var start = new Barrier(threads + 1);
        var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            start.SignalAndWait();
            Sink = kernel(iterations);
        }) { IsBackground = true }).ToList();
        foreach (var w in workers) w.Start();
        start.SignalAndWait();
        var sw = Stopwatch.StartNew();
        foreach (var w in workers) w.Join();
        return threads * (double)iterations / sw.Elapsed.TotalSeconds;
    }

    /// <summary>Keeps the loops' results alive so the JIT cannot drop them.</summary>
    private static volatile float Sink;

    // Each chain is x = x * m + c with m just below 1: it converges to c / (1 - m), a normal number, so no chain
    // overflows or turns denormal (denormals would slow some CPUs down).
    private const float M = 0.9999999f, C = 1e-7f;

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Avx512Loop(long iterations)
    {
        var m = Vector512.Create(M);
        var c = Vector512.Create(C);
        Vector512<float> a0 = Vector512.Create(0.10f), a1 = Vector512.Create(0.11f), a2 = Vector512.Create(0.12f), a3 = Vector512.Create(0.13f),
            a4 = Vector512.Create(0.14f), a5 = Vector512.Create(0.15f), a6 = Vector512.Create(0.16f), a7 = Vector512.Create(0.17f),
            a8 = Vector512.Create(0.18f), a9 = Vector512.Create(0.19f), a10 = Vector512.Create(0.20f), a11 = Vector512.Create(0.21f);
        for (long i = 0; i < iterations; i++)
        {
            a0 = Avx512F.FusedMultiplyAdd(a0, m, c);
            a1 = Avx512F.FusedMultiplyAdd(a1, m, c);
            a2 = Avx512F.FusedMultiplyAdd(a2, m, c);
            a3 = Avx512F.FusedMultiplyAdd(a3, m, c);
            a4 = Avx512F.FusedMultiplyAdd(a4, m, c);
            a5 = Avx512F.FusedMultiplyAdd(a5, m, c);
            a6 = Avx512F.FusedMultiplyAdd(a6, m, c);
            a7 = Avx512F.FusedMultiplyAdd(a7, m, c);
            a8 = Avx512F.FusedMultiplyAdd(a8, m, c);
            a9 = Avx512F.FusedMultiplyAdd(a9, m, c);
            a10 = Avx512F.FusedMultiplyAdd(a10, m, c);
            a11 = Avx512F.FusedMultiplyAdd(a11, m, c);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Avx2Loop(long iterations)
    {
        var m = Vector256.Create(M);
        var c = Vector256.Create(C);
        Vector256<float> a0 = Vector256.Create(0.10f), a1 = Vector256.Create(0.11f), a2 = Vector256.Create(0.12f), a3 = Vector256.Create(0.13f),
            a4 = Vector256.Create(0.14f), a5 = Vector256.Create(0.15f), a6 = Vector256.Create(0.16f), a7 = Vector256.Create(0.17f),
            a8 = Vector256.Create(0.18f), a9 = Vector256.Create(0.19f), a10 = Vector256.Create(0.20f), a11 = Vector256.Create(0.21f);
        for (long i = 0; i < iterations; i++)
        {
            a0 = Fma.MultiplyAdd(a0, m, c);
            a1 = Fma.MultiplyAdd(a1, m, c);
            a2 = Fma.MultiplyAdd(a2, m, c);
            a3 = Fma.MultiplyAdd(a3, m, c);
            a4 = Fma.MultiplyAdd(a4, m, c);
            a5 = Fma.MultiplyAdd(a5, m, c);
            a6 = Fma.MultiplyAdd(a6, m, c);
            a7 = Fma.MultiplyAdd(a7, m, c);
            a8 = Fma.MultiplyAdd(a8, m, c);
            a9 = Fma.MultiplyAdd(a9, m, c);
            a10 = Fma.MultiplyAdd(a10, m, c);
            a11 = Fma.MultiplyAdd(a11, m, c);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float AdvSimdLoop(long iterations)
    {
        var m = Vector128.Create(M);
        var c = Vector128.Create(C);
        Vector128<float> a0 = Vector128.Create(0.10f), a1 = Vector128.Create(0.11f), a2 = Vector128.Create(0.12f), a3 = Vector128.Create(0.13f),
            a4 = Vector128.Create(0.14f), a5 = Vector128.Create(0.15f), a6 = Vector128.Create(0.16f), a7 = Vector128.Create(0.17f),
            a8 = Vector128.Create(0.18f), a9 = Vector128.Create(0.19f), a10 = Vector128.Create(0.20f), a11 = Vector128.Create(0.21f);
        for (long i = 0; i < iterations; i++)
        {
            // AdvSimd.FusedMultiplyAdd(addend, left, right) = addend + left * right.
            a0 = AdvSimd.FusedMultiplyAdd(c, a0, m);
            a1 = AdvSimd.FusedMultiplyAdd(c, a1, m);
            a2 = AdvSimd.FusedMultiplyAdd(c, a2, m);
            a3 = AdvSimd.FusedMultiplyAdd(c, a3, m);
            a4 = AdvSimd.FusedMultiplyAdd(c, a4, m);
            a5 = AdvSimd.FusedMultiplyAdd(c, a5, m);
            a6 = AdvSimd.FusedMultiplyAdd(c, a6, m);
            a7 = AdvSimd.FusedMultiplyAdd(c, a7, m);
            a8 = AdvSimd.FusedMultiplyAdd(c, a8, m);
            a9 = AdvSimd.FusedMultiplyAdd(c, a9, m);
            a10 = AdvSimd.FusedMultiplyAdd(c, a10, m);
            a11 = AdvSimd.FusedMultiplyAdd(c, a11, m);
        }
        return Vector128.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float ScalarLoop(long iterations)
    {
        float a0 = 0.10f, a1 = 0.11f, a2 = 0.12f, a3 = 0.13f, a4 = 0.14f, a5 = 0.15f, a6 = 0.16f, a7 = 0.17f, a8 = 0.18f, a9 = 0.19f, a10 = 0.20f, a11 = 0.21f;
        for (long i = 0; i < iterations; i++)
        {
            a0 = MathF.FusedMultiplyAdd(a0, M, C);
            a1 = MathF.FusedMultiplyAdd(a1, M, C);
            a2 = MathF.FusedMultiplyAdd(a2, M, C);
            a3 = MathF.FusedMultiplyAdd(a3, M, C);
            a4 = MathF.FusedMultiplyAdd(a4, M, C);
            a5 = MathF.FusedMultiplyAdd(a5, M, C);
            a6 = MathF.FusedMultiplyAdd(a6, M, C);
            a7 = MathF.FusedMultiplyAdd(a7, M, C);
            a8 = MathF.FusedMultiplyAdd(a8, M, C);
            a9 = MathF.FusedMultiplyAdd(a9, M, C);
            a10 = MathF.FusedMultiplyAdd(a10, M, C);
            a11 = MathF.FusedMultiplyAdd(a11, M, C);
        }
        return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    }
}
