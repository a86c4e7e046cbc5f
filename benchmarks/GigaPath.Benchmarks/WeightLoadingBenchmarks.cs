using BenchmarkDotNet.Attributes;
using GigaPath.Models.Tile;
using TorchSharp;

namespace GigaPath.Benchmarks;

/// <summary>
/// Loading the full 4.5 GB float32 tile-encoder checkpoint (memory-mapped safetensors → parameters) into a model.
/// The checkpoint is written once to a temporary folder (set GIGAPATH_BENCH_TMP to choose the disk).
/// </summary>
public class WeightLoadingBenchmarks
{
    private string _dir = "";

    [GlobalSetup]
    public void Setup()
    {
        var root = Environment.GetEnvironmentVariable("GIGAPATH_BENCH_TMP") ?? Path.GetTempPath();
        _dir = Path.Combine(root, "gigapath-bench-weights");
        if (!File.Exists(Path.Combine(_dir, "model.safetensors")))
            SharedModels.TileEncoder(torch.CPU, torch.ScalarType.Float32).Save(_dir); // the tile benchmarks' model, if cached
        // Released before measuring, so that the peak is the loaded model's alone.
        SharedModels.Release();
        long bytes = new FileInfo(Path.Combine(_dir, "model.safetensors")).Length;
        CaseRecords.Set(this, nameof(LoadTileEncoder), new CaseRecord { ItemsPerOp = bytes / 1e9, ItemName = "GB" });
        PeakMemory.Reset();
    }

    [Benchmark]
    public long LoadTileEncoder()
    {
        using var encoder = TileEncoder.Load(_dir);
        return encoder.ParameterCount;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CaseRecords.SetPeak(this, nameof(LoadTileEncoder), PeakMemory.PeakBytes());
        // The 4.5 GB checkpoint is kept between runs only when the user pointed us at a folder of their own.
        if (Environment.GetEnvironmentVariable("GIGAPATH_BENCH_TMP") is null)
            Directory.Delete(_dir, recursive: true);
    }
}
