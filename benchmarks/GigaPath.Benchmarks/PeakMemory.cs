namespace GigaPath.Benchmarks;

/// <summary>
/// Peak resident memory of this process, native tensors included (the GC does not see those). On Linux the
/// high-water mark can be reset by writing 5 to /proc/self/clear_refs, so each benchmark case gets its own peak.
/// </summary>
public static class PeakMemory
{
    public static bool Reset()
    {
        // Earlier cases' freed tensors stay mapped to the process (NativeAllocator keeps free heap for reuse); hand
        // them back first so that this case's peak is its own.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GigaPath.Runtime.NativeAllocator.ReleaseFreeMemory();
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>VmHWM in bytes, or the .NET peak working set where /proc is unavailable.</summary>
    public static long PeakBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
            }
        }
        catch (IOException)
        {
        }
        return System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64;
    }

    public static long CurrentBytes() => Environment.WorkingSet;

    public static string Format(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):F2} GiB" : $"{bytes / (double)(1L << 20):F0} MiB";
}
