namespace GigaPath.Server.Slide;

/// <summary>
/// Runs slide encodings one at a time on the single slide encoder instance, with a bounded number of requests
/// waiting; beyond that the caller gets 503. A slide forward is long and memory-hungry, so unlike tiles slides
/// are not batched together.
/// </summary>
internal sealed class SlideRunner
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly int _capacity;
    private int _admitted;

    public SlideRunner(int capacity) => _capacity = capacity;

    /// <summary>Requests admitted: the one running and those waiting.</summary>
    public int Depth => Volatile.Read(ref _admitted);

    public async Task<T> RunAsync<T>(Func<T> work, CancellationToken cancel)
    {
        if (Interlocked.Increment(ref _admitted) > _capacity + 1)
        {
            Interlocked.Decrement(ref _admitted);
            throw new ApiException(503, $"slide encoder is busy ({_capacity} slides waiting); retry later") { RetryAfterSeconds = 5 };
        }
        try
        {
            await _gate.WaitAsync(cancel).ConfigureAwait(false);
            try
            {
                return await Task.Run(work, cancel).ConfigureAwait(false);
            }
            finally
            {
                _gate.Release();
            }
        }
        finally
        {
            Interlocked.Decrement(ref _admitted);
        }
    }
}
