using System.Diagnostics;

namespace GigaPath.Server.Metrics;

/// <summary>
/// Request latencies over a sliding window (the last <c>window</c> of time, at most <c>capacity</c> samples),
/// from which quantiles are computed on demand. Old samples fall out, so the figures describe the server now,
/// not since it started.
/// </summary>
internal sealed class LatencyWindow
{
    private readonly object _lock = new();
    private readonly (long Ticks, double Seconds)[] _ring;
    private readonly long _windowTicks;
    private int _next;
    private int _count;

    public LatencyWindow(TimeSpan window, int capacity)
    {
        _ring = new (long, double)[capacity];
        _windowTicks = (long)(window.TotalSeconds * Stopwatch.Frequency);
    }

    public void Add(double seconds)
    {
        lock (_lock)
        {
            _ring[_next] = (Stopwatch.GetTimestamp(), seconds);
            _next = (_next + 1) % _ring.Length;
            _count = Math.Min(_count + 1, _ring.Length);
        }
    }

    /// <summary>Nearest-rank quantiles of the samples in the window (empty when there are none).</summary>
    public double[] Quantiles(IReadOnlyList<double> qs)
    {
        double[] values;
        long cutoff = Stopwatch.GetTimestamp() - _windowTicks;
        lock (_lock)
        {
            values = _ring.Take(_count).Where(s => s.Ticks >= cutoff).Select(s => s.Seconds).ToArray();
        }
        if (values.Length == 0) return Array.Empty<double>();
        Array.Sort(values);
        return qs.Select(q => values[Math.Clamp((int)Math.Ceiling(q * values.Length) - 1, 0, values.Length - 1)]).ToArray();
    }
}
