using System.Collections.Concurrent;
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Benchmarks;

/// <summary>
/// The machine's measured GEMM rate per (device, dtype), taken in the same process as the model benchmarks so that
/// each model figure can be stated as a fraction of what this machine actually reaches right now.
/// </summary>
public static class Roofline
{
    private static readonly ConcurrentDictionary<(string, ScalarType), double> Cache = new();

    /// <summary>
    /// GFLOP/s of a square matmul (best of several repetitions), measured afresh at each call - right before the case
    /// that uses it - because a shared machine's rate drifts; the summary keeps the best rate seen in the run.
    /// </summary>
    public static double GemmGflops(Device device, ScalarType dtype, int n = 2048, int repetitions = 5)
    {
        var rate = Measure(device, dtype, n, repetitions);
        Cache.AddOrUpdate((device.ToString(), dtype), rate, (_, old) => Math.Max(old, rate));
        return rate;
    }

    private static double Measure(Device device, ScalarType dtype, int n, int repetitions)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var a = torch.randn(n, n, device: device).to_type(dtype);
        var b = torch.randn(n, n, device: device).to_type(dtype);
        var c = a.matmul(b); // warm-up: oneDNN picks and JITs its kernel here
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
        return 2.0 * n * n * (double)n / best / 1e9;
    }

    public static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA)
            torch.cuda.synchronize(device);
    }

    public static IReadOnlyDictionary<(string Device, ScalarType DType), double> Measured => Cache;
}
