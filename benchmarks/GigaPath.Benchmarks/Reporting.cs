using System.Collections.Concurrent;
using System.Reflection;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace GigaPath.Benchmarks;

/// <summary>What a benchmark case did per operation, recorded by the benchmark itself (in-process toolchain).</summary>
public sealed record CaseRecord
{
    public double ItemsPerOp { get; init; }
    public string ItemName { get; init; } = "items";
    public double FlopsPerOp { get; init; }
    /// <summary>FLOPs actually executed, where the engine skips part of the model's nominal work (0: same as nominal).</summary>
    public double ExecutedFlopsPerOp { get; init; }
    public double GemmGflops { get; init; }
    /// <summary>The hardware peak of the case's device and dtype (<see cref="Roofline.PeakGflops"/>), 0 where not measured.</summary>
    public double PeakGflops { get; init; }
    public long PeakBytes { get; set; }
    public string? Note { get; init; }
}

public static class CaseRecords
{
    private static readonly ConcurrentDictionary<string, CaseRecord> Records = new();

    public static string KeyFor(object benchmark, string method)
    {
        var t = benchmark.GetType();
        // The in-process toolchain runs an emitted subclass (Runnable_N); key on our own benchmark type.
        while (t.BaseType is not null && t.Assembly != typeof(CaseRecords).Assembly) t = t.BaseType;
        var parts = t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetCustomAttribute<ParamsAttribute>() is not null || p.GetCustomAttribute<ParamsSourceAttribute>() is not null
                        || p.GetCustomAttribute<ParamsAllValuesAttribute>() is not null)
            .OrderBy(p => p.Name, StringComparer.Ordinal)
            .Select(p => $"{p.Name}={p.GetValue(benchmark)}");
        return $"{t.Name}.{method}|{string.Join("|", parts)}";
    }

    public static string KeyFor(BenchmarkCase c) =>
        $"{c.Descriptor.Type.Name}.{c.Descriptor.WorkloadMethod.Name}|" +
        string.Join("|", c.Parameters.Items.OrderBy(i => i.Name, StringComparer.Ordinal).Select(i => $"{i.Name}={i.Value}"));

    public static void Set(object benchmark, string method, CaseRecord record) => Records[KeyFor(benchmark, method)] = record;

    public static void SetPeak(object benchmark, string method, long peakBytes)
    {
        if (Records.TryGetValue(KeyFor(benchmark, method), out var r)) r.PeakBytes = Math.Max(r.PeakBytes, peakBytes);
        else Records[KeyFor(benchmark, method)] = new CaseRecord { PeakBytes = peakBytes };
    }

    public static CaseRecord? Get(BenchmarkCase c) => Records.TryGetValue(KeyFor(c), out var r) ? r : null;

    public static IEnumerable<string> Keys => Records.Keys;
}

/// <summary>A column computed from the case's mean time and its <see cref="CaseRecord"/>.</summary>
public sealed class RecordColumn : IColumn
{
    private readonly Func<CaseRecord, double, string> _value;

    public RecordColumn(string id, string header, string legend, Func<CaseRecord, double, string> value)
    {
        Id = id;
        ColumnName = header;
        Legend = legend;
        _value = value;
    }

    public string Id { get; }
    public string ColumnName { get; }
    public string Legend { get; }
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var record = CaseRecords.Get(benchmarkCase);
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (record is null || stats is null) return "-";
        return _value(record, stats.Mean / 1e9);
    }

    public static IEnumerable<IColumn> All() => new IColumn[]
    {
        new RecordColumn("ItemsPerSecond", "Items/s", "Work items (tiles, images, tokens) per second: items per op / mean time",
            (r, s) => r.ItemsPerOp > 0 ? $"{r.ItemsPerOp / s:F3} {r.ItemName}/s" : "-"),
        new RecordColumn("AchievedGflops", "GFLOP/s", "Achieved model FLOP rate",
            (r, s) => r.FlopsPerOp > 0 ? $"{r.FlopsPerOp / s / 1e9:F1}" : "-"),
        new RecordColumn("RooflineFraction", "of GEMM", "Achieved FLOP rate / GEMM GFLOP/s of the same device and dtype, measured in this run",
            (r, s) => r.FlopsPerOp > 0 && r.GemmGflops > 0
                ? $"{r.FlopsPerOp / s / 1e9 / r.GemmGflops:P0} of {r.GemmGflops:F0}"
                  + (r.ExecutedFlopsPerOp > 0 ? $" ({r.ExecutedFlopsPerOp / s / 1e9 / r.GemmGflops:P0} executed)" : "")
                : "-"),
        new RecordColumn("PeakFraction", "of peak", "Achieved FLOP rate / the hardware peak measured just before the case (fp32: FMA loop on all cores; bf16: 2x that, VDPBF16PS's nominal rate)",
            (r, s) => r.FlopsPerOp > 0 && r.PeakGflops > 0
                ? $"{r.FlopsPerOp / s / 1e9 / r.PeakGflops:P0} of {r.PeakGflops:F0}"
                : "-"),
        new RecordColumn("PeakRss", "Peak RSS", "Peak resident memory of the process during the case (native tensors included)",
            (r, s) => r.PeakBytes > 0 ? PeakMemory.Format(r.PeakBytes) : "-"),
        new RecordColumn("Note", "Note", "Remarks recorded by the benchmark",
            (r, s) => r.Note ?? ""),
    };
}
