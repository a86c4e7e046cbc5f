namespace GigaPath.Server.Slide;

/// <summary>
/// Runs slide encodings one at a time on the single slide encoder instance, with a bounded number of requests
/// waiting; beyond that the caller gets 503. A slide forward is long and memory-hungry, so unlike tiles slides
/// are not batched together. After each one the server's freed memory goes back to the system
/// (<see cref="Hosting.IdleMemoryRelease.ReleaseNow"/>): the forward runs on whichever pool thread is free, each with its
/// own malloc arena keeping up to the allocator's trim threshold of freed activations, so six slides in a row kept
/// 2.4 GiB where one takes 0.7 GiB (demo model, 50,000 tiles).
/// </summary>
internal sealed class SlideRunner
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly int _capacity;
    private int _admitted;

    public SlideRunner(int capacity) => _capacity = capacity;

    /// <summary>Requests admitted: the one running and those waiting.</summary>
    public int Depth => Volatile.Read(ref _admitted);

    public async Task<T> RunAsync<T>(Func<Task<T>> work, CancellationToken cancel)
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
                Hosting.IdleMemoryRelease.ReleaseNow();
                _gate.Release();
            }
        }
        finally
        {
            Interlocked.Decrement(ref _admitted);
        }
    }
}
