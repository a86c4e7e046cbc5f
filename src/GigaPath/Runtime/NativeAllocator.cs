using System.Runtime.InteropServices;

namespace GigaPath.Runtime;

/// <summary>
/// Tunes glibc's malloc for tensor workloads. libtorch allocates CPU tensors with malloc; by default glibc serves
/// every request above a (dynamic, at most 32 MB) threshold with a fresh mmap and unmaps it on free, so each large
/// activation of every layer is faulted in page by page and zeroed by the kernel again - measured here as 4 ms to
/// copy 16 MB into a fresh tensor instead of 0.3 ms, and a visible share of the attention kernel's time. Serving
/// large blocks from the heap and keeping up to <see cref="TrimThresholdBytes"/> of free memory at its top for reuse
/// removes that cost; the price is that up to that much freed memory stays mapped to the process.
/// </summary>
public static class NativeAllocator
{
    /// <summary>Free memory glibc may keep at the top of the heap before returning it to the system.</summary>
    public const long TrimThresholdBytes = 1L << 30;

    private const int MTrimThreshold = -1, MTopPad = -2, MMmapMax = -4;
    private static int _configured;

    /// <summary>
    /// Applies the tuning once per process (Linux with glibc only; elsewhere, or with GIGAPATH_MALLOC_TUNING=0, it
    /// does nothing). Call it at start-up, before the first model is built. Returns whether the tuning is active.
    /// </summary>
    public static bool Configure()
    {
        if (Interlocked.Exchange(ref _configured, 1) == 1) return Active;
        // The other native setting that must precede libtorch's loading: no spinning OpenMP threads (see there).
        OpenMpWaitPolicy.Configure();
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("GIGAPATH_MALLOC_TUNING") == "0") return false;
        try
        {
            // mallopt returns 1 on success. M_MMAP_MAX = 0: no per-allocation mmap in the main arena (other threads'
            // arenas still map what exceeds their 64 MB heaps).
            Active = mallopt(MMmapMax, 0) == 1
                && mallopt(MTrimThreshold, (int)Math.Min(TrimThresholdBytes, int.MaxValue)) == 1
                && mallopt(MTopPad, 64 << 20) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            Active = false; // not glibc (e.g. musl): leave the allocator alone
        }
        return Active;
    }

    /// <summary>Whether <see cref="Configure"/> changed the allocator's settings in this process.</summary>
    public static bool Active { get; private set; }

    /// <summary>
    /// Returns the heap's free memory to the system now (glibc's malloc_trim), e.g. after a large slide in a
    /// long-running server, or before measuring a peak. Does nothing where the tuning is not active.
    /// </summary>
    public static void ReleaseFreeMemory()
    {
        if (Active) malloc_trim(0);
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int mallopt(int param, int value);
}
