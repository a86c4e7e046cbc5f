using GigaPath.Runtime;

namespace GigaPath.Server.Hosting;

/// <summary>
/// Gives memory back to the system when the server goes idle after scoring requests. A request can leave a lot
/// behind that nothing will reuse soon: large-object-heap garbage from decoding big images (the GC returns it only
/// after a full collection, and keeps freed regions for reuse), and the native heap, which
/// <see cref="NativeAllocator"/> lets keep up to 1 GiB of freed tensor memory so that busy forwards do not fault
/// pages in again. Under load neither matters; idle, it is memory the host could use. So once no request has been in
/// flight for <see cref="IdleDelay"/> after a scoring request, this runs one compacting full collection and
/// <c>malloc_trim</c>: a few milliseconds with the server's small live heap, and nothing at all while requests keep
/// coming.
/// </summary>
internal sealed class IdleMemoryRelease
{
    public static readonly TimeSpan IdleDelay = TimeSpan.FromMilliseconds(250);

    private int _inFlight;
    private int _dirty;
    private int _scheduled;

    public void Enter() => Interlocked.Increment(ref _inFlight);

    /// <param name="scoring">Whether the request was a scoring one (probes and metrics allocate next to nothing).</param>
    public void Exit(bool scoring)
    {
        if (scoring) Volatile.Write(ref _dirty, 1);
        if (Interlocked.Decrement(ref _inFlight) == 0 && Volatile.Read(ref _dirty) == 1 && Interlocked.Exchange(ref _scheduled, 1) == 0)
            _ = Task.Run(ReleaseWhenIdleAsync);
    }

    private async Task ReleaseWhenIdleAsync()
    {
        await Task.Delay(IdleDelay).ConfigureAwait(false);
        // From here on a request that ends schedules its own pass; one that is still running will when it ends.
        Volatile.Write(ref _scheduled, 0);
        if (Volatile.Read(ref _inFlight) != 0 || Interlocked.Exchange(ref _dirty, 0) == 0) return;
        ReleaseNow();
    }

    /// <summary>One compacting full collection and <c>malloc_trim</c>: freed managed and native memory back to the system.</summary>
    public static void ReleaseNow()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        NativeAllocator.ReleaseFreeMemory();
    }
}
