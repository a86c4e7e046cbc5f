using System.Runtime.InteropServices;

namespace GigaPath.Runtime;

/// <summary>
/// Tunes glibc's malloc for tensor workloads. libtorch allocates CPU tensors with malloc; by default glibc serves
/// every request above a (dynamic, at most 32 MB) threshold with a fresh mmap and unmaps it on free, so each large
/// activation of every layer is faulted in page by page and zeroed by the kernel again - measured here as 4 ms to
/// copy 16 MB into a fresh tensor instead of 0.3 ms, and a visible share of the attention kernel's time. Serving
/// large blocks from the heap and keeping up to <see cref="TrimThresholdBytes"/> of free memory at its top for reuse
/// removes that cost; the price is that up to that much freed memory stays mapped to the process.
/// <para>
/// Training is the exception: a step keeps weights, gradients and optimizer state for its whole length and allocates
/// and frees gigabytes of differently-lived buffers around them, and a heap that serves both fragments (measured at
/// 10k tiles: 2.1 GB of free heap resident at the end of the backward pass; the first step at 10k peaked at 4.7 GiB
/// instead of 3.4). So every training step (<c>TrainingStep</c>) runs under <see cref="MapLargeBlocks"/>: a block
/// of <see cref="LargeBlockBytes"/> or more that no free space in the heap can hold gets a mapping of its own instead
/// of growing the heap (glibc's rule), and the heap stops growing for large blocks. This is set by the program, whatever
/// started it. Where transparent huge pages back glibc's mappings (<see cref="HugePageMappings"/>) each mapping costs
/// one fault per 2 MB; elsewhere the kernel faults it in 4 KB at a time, which made a 10k-tile step 0-5 % slower
/// (89-95 s against 90 s in single runs), for the same memory.
/// </para>
/// </summary>
public static class NativeAllocator
{
    /// <summary>Free memory glibc may keep at the top of the heap before returning it to the system.</summary>
    public const long TrimThresholdBytes = 1L << 30;

    /// <summary>
    /// Size from which <see cref="MapLargeBlocks"/> gives a block its own mapping: above every buffer a training step
    /// makes and frees per block (attention scores 4 MB, gathered q/k/v 8 MB, 1024-row FFN intermediates 12.6 MB), so
    /// those are recycled by the heap, and below the step's L·D activations (31 MB at 10k tiles), which are mapped.
    /// A fresh mapping costs the kernel a fault, zeroing and, in THP's default <c>madvise</c> defrag mode, direct
    /// compaction: with 4 MB here, the attention kernel's blocks got mappings whenever kept tensors had used up the
    /// heap's top, and a 50k-tile attention backward took 57-71 s instead of 26-33 s.
    /// </summary>
    public const int LargeBlockBytes = 16 << 20;

    private const int MTrimThreshold = -1, MTopPad = -2, MMmapThreshold = -3, MMmapMax = -4;
    private static int _configured;
    private static int _mappedScopes;
    private static readonly Lock MappedScopesLock = new();

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
    /// Whether transparent huge pages back the mappings glibc's malloc makes in this process: the kernel's THP mode is
    /// <c>always</c>, or it is <c>madvise</c> and the process started with <c>GLIBC_TUNABLES=glibc.malloc.hugetlb=1</c>
    /// (glibc 2.35+). It changes the speed of <see cref="MapLargeBlocks"/>, not the memory it takes.
    /// </summary>
    public static bool HugePageMappings { get; } = OperatingSystem.IsLinux() && HugePagesBackMallocMappings(
        ReadOrNull("/sys/kernel/mm/transparent_hugepage/enabled"), Environment.GetEnvironmentVariable("GLIBC_TUNABLES"), GlibcVersion());

    /// <summary>
    /// Decides <see cref="HugePageMappings"/> from the kernel's THP mode (the contents of
    /// /sys/kernel/mm/transparent_hugepage/enabled, the active mode in brackets), the process's GLIBC_TUNABLES and the
    /// glibc version (null where unknown).
    /// </summary>
    internal static bool HugePagesBackMallocMappings(string? thpEnabled, string? glibcTunables, Version? glibc)
    {
        if (thpEnabled is null) return false;
        if (thpEnabled.Contains("[always]", StringComparison.Ordinal)) return true;
        if (!thpEnabled.Contains("[madvise]", StringComparison.Ordinal) || glibc is null || glibc < new Version(2, 35)) return false;
        // Tunables are colon-separated name=value pairs; the last setting of a name wins. hugetlb=1 is madvise'd THP;
        // 2 asks for reserved hugetlbfs pages, which most machines do not have.
        string? value = null;
        foreach (var pair in (glibcTunables ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            if (pair.StartsWith("glibc.malloc.hugetlb=", StringComparison.Ordinal)) value = pair["glibc.malloc.hugetlb=".Length..];
        return value == "1";
    }

    /// <summary>
    /// While the returned scope lives, blocks of <see cref="LargeBlockBytes"/> and more that the heap's free space cannot
    /// hold get mappings of their own, returned to the system when freed, instead of growing the heap, so that
    /// long-lived training state and a step's short-lived buffers do not fragment one heap. Does nothing unless the
    /// tuning is active. Scopes may nest and overlap across threads; the heap takes large blocks back when the last one
    /// ends.
    /// </summary>
    internal static IDisposable MapLargeBlocks()
    {
        if (!Active) return MappedBlocksScope.None;
        lock (MappedScopesLock)
        {
            if (_mappedScopes++ == 0)
            {
                mallopt(MMmapThreshold, LargeBlockBytes);
                mallopt(MMmapMax, 1 << 20);
            }
        }
        return new MappedBlocksScope();
    }

    private sealed class MappedBlocksScope : IDisposable
    {
        public static readonly IDisposable None = new EmptyScope();
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
            lock (MappedScopesLock)
            {
                // Blocks mapped meanwhile stay mappings and are unmapped when freed; new ones come from the heap again.
                if (--_mappedScopes == 0) mallopt(MMmapMax, 0);
            }
        }

        private sealed class EmptyScope : IDisposable
        {
            public void Dispose() { }
        }
    }

    private static string? ReadOrNull(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static Version? GlibcVersion()
    {
        try
        {
            return Version.TryParse(Marshal.PtrToStringUTF8(gnu_get_libc_version()), out var v) ? v : null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    [DllImport("libc", EntryPoint = "gnu_get_libc_version")]
    private static extern IntPtr gnu_get_libc_version();

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
