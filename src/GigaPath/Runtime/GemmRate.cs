using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Runtime;

/// <summary>
/// libtorch's square-matmul rate on a device and dtype: the practical roofline of the GEMM-bound models. One
/// implementation for <c>gigapath info --probe</c>, the bfloat16 probe of <see cref="DTypeAdvisor"/> and the benchmarks.
/// </summary>
internal static class GemmRate
{
    /// <summary>GFLOP/s of an n³ matmul, best of <paramref name="repetitions"/> after one warm-up (oneDNN picks and JITs its kernel there).</summary>
    public static double Gflops(Device device, ScalarType dtype, int n, int repetitions) =>
        2.0 * n * n * (double)n / BestSeconds(device, dtype, n, repetitions) / 1e9;

    /// <summary>
    /// The rate at the largest size up to <paramref name="maxN"/> (doubling from 256) whose single matmul takes under
    /// <paramref name="perMatmul"/>: a few seconds at most even where the dtype is emulated (a 2048³ bfloat16 matmul
    /// takes ~50 s without bf16 hardware; at 256³ that is ~0.1 s).
    /// </summary>
    public static (int N, double Gflops) Bounded(Device device, ScalarType dtype, int maxN, TimeSpan perMatmul, int repetitions = 3)
    {
        int n = 256;
        double seconds = BestSeconds(device, dtype, n, repetitions);
        // Each doubling costs 8× the time: only take it when the next size is predicted to fit the bound.
        while (n * 2 <= maxN && seconds * 8 < perMatmul.TotalSeconds)
        {
            n *= 2;
            seconds = BestSeconds(device, dtype, n, repetitions);
        }
        return (n, 2.0 * n * n * (double)n / seconds / 1e9);
    }

    private static double BestSeconds(Device device, ScalarType dtype, int n, int repetitions)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var a = torch.randn(n, n, device: device).to_type(dtype);
        var b = torch.randn(n, n, device: device).to_type(dtype);
        a.matmul(b);
        Synchronize(device);
        double best = double.MaxValue;
        for (int i = 0; i < repetitions; i++)
        {
            var sw = Stopwatch.StartNew();
            using (var r = a.matmul(b))
            {
                Synchronize(device);
            }
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    /// <summary>Waits for queued CUDA work, so that a timing covers it; nothing to wait for on the CPU.</summary>
    public static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA)
            torch.cuda.synchronize(device);
    }
}
