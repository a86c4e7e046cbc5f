namespace GigaPath.Server.Hosting;

/// <summary>
/// The server-wide bound on request memory in flight (<see cref="ServerOptions.MemoryBudgetBytes"/>): request bodies
/// (from Content-Length, before they are read), decoded pixels (from each image's header, before it is decoded),
/// preprocessed tiles and their answers while they wait for a batch, and parsed tile features of <c>/score/slide</c>
/// (while parsing, and for as long as the slide waits for the encoder). Each request holds one <see cref="Lease"/>
/// that grows as it learns what it needs; what does not fit now is refused with 503 and <c>Retry-After</c>, what could
/// never fit with 413 naming the option. Model activations are not counted (they depend on the model; the batch size
/// and the slide queue bound them).
/// <para>
/// Freed request memory is garbage until a collection, and native decoders leave freed pages in malloc's arenas: the
/// budget counts bytes given back, and after a quarter of its capacity it runs a collection and <c>malloc_trim</c>
/// (<see cref="IdleMemoryRelease.ReleaseNow"/>) even while requests keep coming, so the resident set follows the
/// budget instead of the allocation rate.
/// </para>
/// </summary>
internal sealed class MemoryBudget
{
    private readonly Lock _lock = new();
    private long _inUse;
    private long _freedSinceRelease;
    private int _releasing;

    public MemoryBudget(long capacity) => Capacity = capacity;

    public long Capacity { get; }

    /// <summary>Bytes reserved by requests now.</summary>
    public long InUse
    {
        get { lock (_lock) return _inUse; }
    }

    /// <summary>An empty lease for one request; grow it before each allocation it stands for.</summary>
    public Lease Open() => new(this);

    private void Take(Lease lease, long bytes, string what)
    {
        if (bytes <= 0) return;
        lock (_lock)
        {
            if (lease.Bytes + bytes > Capacity)
                throw new ApiException(413, $"{what} needs {Mib(lease.Bytes + bytes)} of memory, more than the server's memory budget of {Mib(Capacity)} ({ServerOptions.MemoryBudgetOption})");
            if (_inUse + bytes > Capacity)
                throw new ApiException(503, $"server is busy: {what} needs {Mib(bytes)} and {Mib(Capacity - _inUse)} of the {Mib(Capacity)} memory budget is free; retry later") { RetryAfterSeconds = 1 };
            _inUse += bytes;
            lease.Bytes += bytes;
        }
    }

    private void Give(Lease lease, long bytes)
    {
        bool release;
        lock (_lock)
        {
            bytes = Math.Min(bytes, lease.Bytes);
            if (bytes <= 0) return;
            _inUse -= bytes;
            lease.Bytes -= bytes;
            _freedSinceRelease += bytes;
            release = _freedSinceRelease >= Capacity / 4;
            if (release) _freedSinceRelease = 0;
        }
        if (release && Interlocked.Exchange(ref _releasing, 1) == 0)
        {
            _ = Task.Run(() =>
            {
                try
                {
                    IdleMemoryRelease.ReleaseNow();
                }
                finally
                {
                    Volatile.Write(ref _releasing, 0);
                }
            });
        }
    }

    private static string Mib(long bytes) => $"{bytes / (1024.0 * 1024):F0} MiB";

    /// <summary>What one request holds of the budget; disposing gives it all back.</summary>
    public sealed class Lease : IDisposable
    {
        private readonly MemoryBudget _budget;

        internal Lease(MemoryBudget budget) => _budget = budget;

        /// <summary>Bytes this lease holds.</summary>
        public long Bytes { get; internal set; }

        /// <summary>Reserves <paramref name="bytes"/> more for <paramref name="what"/> (named in the 503/413), or throws.</summary>
        public void Grow(long bytes, string what) => _budget.Take(this, bytes, what);

        /// <summary>Gives back <paramref name="bytes"/> of what this lease holds (memory the request no longer uses).</summary>
        public void Shrink(long bytes) => _budget.Give(this, bytes);

        public void Dispose() => _budget.Give(this, Bytes);
    }
}
