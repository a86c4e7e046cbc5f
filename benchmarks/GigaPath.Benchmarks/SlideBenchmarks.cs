using BenchmarkDotNet.Attributes;
using GigaPath.Slides;

namespace GigaPath.Benchmarks;

/// <summary>Planning (two scans of the level for the tissue mask) and tile reads on the real H&amp;E test slide.</summary>
public class SlideBenchmarks
{
    /// <summary>0.5: level 0 read tile-for-tile; 1.0: 513-px reads resized to 256 (Pillow bicubic).</summary>
    [Params(0.5, 1.0)]
    public double TargetMpp { get; set; }

    [ParamsSource(nameof(ThreadCounts))]
    public int Threads { get; set; }

    public static IEnumerable<int> ThreadCounts => SuiteSettings.Short ? [2] : [1, 2];

    private ISlide _slide = null!;
    private TilingPlan _plan = null!;

    [GlobalSetup]
    public void Setup()
    {
        _slide = SlideOpener.Open(BenchPaths.Fixture("slides", "CMU-1-Small-Region.svs"));
        _plan = TilingPlanner.Plan(_slide, new TilingOptions { TargetMpp = TargetMpp });
        CaseRecords.Set(this, nameof(Plan), new CaseRecord { ItemsPerOp = 1, ItemName = "slides" });
        CaseRecords.Set(this, nameof(ReadTiles), new CaseRecord { ItemsPerOp = _plan.Tiles.Count, ItemName = "tiles" });
    }

    [GlobalCleanup]
    public void Cleanup() => _slide.Dispose();

    [Benchmark]
    public int Plan() => TilingPlanner.Plan(_slide, new TilingOptions { TargetMpp = TargetMpp }).Tiles.Count;

    [Benchmark]
    public long ReadTiles()
    {
        long sum = 0;
        Parallel.ForEach(_plan.Tiles, new ParallelOptions { MaxDegreeOfParallelism = Threads },
            t => Interlocked.Add(ref sum, TilingPlanner.ReadTile(_slide, _plan, t).Pixels[0]));
        return sum;
    }
}
