using System.Diagnostics;

namespace GigaPath.Runtime;

/// <summary>The memory this process has used, as the figures GigaPath's commands and reports give.</summary>
public static class ProcessMemory
{
    /// <summary>
    /// The process's peak resident memory so far in bytes (VmHWM on Linux, the peak working set elsewhere): what a
    /// slide or a training run cost, model and inputs included.
    /// </summary>
    public static long PeakResidentBytes
    {
        get
        {
            using var process = Process.GetCurrentProcess();
            return process.PeakWorkingSet64;
        }
    }
}
