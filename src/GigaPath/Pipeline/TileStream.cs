using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;

namespace GigaPath.Pipeline;

/// <summary>A batch of consecutive tiles [Start, Start + Tiles.Length), each already preprocessed.</summary>
internal sealed record TileBatch(int Start, float[][] Tiles)
{
    public int Count => Tiles.Length;
}

/// <summary>
/// Reads tiles with several reader tasks and hands them out as batches in input order. Batches wait in a bounded
/// channel, so readers run at most <c>queueBatches</c> batches ahead of the consumer and memory stays bounded
/// however large the slide. The consumer (the tile encoder) pulls with <see cref="Next"/> on its own thread.
/// </summary>
internal sealed class TileStream : IDisposable
{
    private sealed class Slot(int start, int count)
    {
        public readonly int Start = start;
        public readonly float[][] Tiles = new float[count][];
        public readonly Exception?[] Errors = new Exception?[count];
        public int Remaining = count;
        public readonly TaskCompletionSource Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly Func<int, float[]> _read;
    private readonly Channel<Slot> _ready;
    private readonly Channel<(Slot Slot, int Offset)> _work;
    private readonly CancellationTokenSource _cts;
    private readonly Task _producer;
    private readonly Task[] _readers;
    private long _readTicks;
    private long _waitTicks;
    private bool _disposed;

    /// <summary>Total tiles in the stream.</summary>
    public int Count { get; }

    /// <summary>Time the readers spent reading and preprocessing, summed over readers.</summary>
    public TimeSpan ReadTime => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _readTicks));

    /// <summary>Time the consumer spent waiting for a batch that was not ready yet: zero when reading is hidden.</summary>
    public TimeSpan WaitTime => Stopwatch.GetElapsedTime(0, _waitTicks);

    /// <param name="count">Tiles 0 … count-1.</param>
    /// <param name="read">Reads and preprocesses one tile; called concurrently from the reader tasks.</param>
    /// <param name="batchSize">Tiles per batch (the last one may be shorter).</param>
    /// <param name="readers">Reader tasks.</param>
    /// <param name="cancellation">Stops the readers.</param>
    /// <param name="queueBatches">Batches that may wait, complete or in progress, ahead of the consumer.</param>
    public TileStream(int count, Func<int, float[]> read, int batchSize, int readers, int queueBatches, CancellationToken cancellation = default)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        if (batchSize < 1) throw new GigaPathException($"batch size must be at least 1, got {batchSize}");
        if (readers < 1) throw new GigaPathException($"reader count must be at least 1, got {readers}");
        if (queueBatches < 1) throw new GigaPathException($"queue length must be at least 1 batch, got {queueBatches}");
        Count = count;
        _read = read;
        _cts = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        _ready = Channel.CreateBounded<Slot>(new BoundedChannelOptions(queueBatches) { SingleReader = true, SingleWriter = true });
        _work = Channel.CreateUnbounded<(Slot, int)>(new UnboundedChannelOptions { SingleWriter = true });
        var token = _cts.Token;
        _producer = Task.Run(() => Produce(batchSize, token), token);
        _readers = Enumerable.Range(0, readers).Select(_ => Task.Run(() => ReadLoop(token), token)).ToArray();
    }

    private async Task Produce(int batchSize, CancellationToken token)
    {
        try
        {
            for (int start = 0; start < Count; start += batchSize)
            {
                var slot = new Slot(start, Math.Min(batchSize, Count - start));
                // Waits while the queue is full: this is what bounds the read-ahead.
                await _ready.Writer.WriteAsync(slot, token).ConfigureAwait(false);
                for (int i = 0; i < slot.Tiles.Length; i++)
                    _work.Writer.TryWrite((slot, i));
            }
            _ready.Writer.TryComplete();
        }
        catch (Exception e)
        {
            _ready.Writer.TryComplete(e);
        }
        finally
        {
            _work.Writer.TryComplete();
        }
    }

    private async Task ReadLoop(CancellationToken token)
    {
        await foreach (var (slot, offset) in _work.Reader.ReadAllAsync(token).ConfigureAwait(false))
        {
            long t0 = Stopwatch.GetTimestamp();
            try
            {
                slot.Tiles[offset] = _read(slot.Start + offset);
            }
            catch (Exception e)
            {
                slot.Errors[offset] = e;
            }
            Interlocked.Add(ref _readTicks, Stopwatch.GetTimestamp() - t0);
            if (Interlocked.Decrement(ref slot.Remaining) == 0)
                slot.Done.TrySetResult();
        }
    }

    /// <summary>
    /// The next batch in input order, or null after the last. A tile that failed to read rethrows its exception here,
    /// when its batch is reached (the first failing tile of the batch in input order).
    /// </summary>
    public TileBatch? Next()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var token = _cts.Token;
        long t0 = Stopwatch.GetTimestamp();
        try
        {
            if (!_ready.Reader.TryRead(out var slot))
            {
                if (!_ready.Reader.WaitToReadAsync(token).AsTask().GetAwaiter().GetResult())
                    return null;
                _ready.Reader.TryRead(out slot);
            }
            slot!.Done.Task.WaitAsync(token).GetAwaiter().GetResult();
            if (slot.Errors.FirstOrDefault(e => e is not null) is { } error)
                ExceptionDispatchInfo.Throw(error);
            return new TileBatch(slot.Start, slot.Tiles);
        }
        finally
        {
            _waitTicks += Stopwatch.GetTimestamp() - t0;
        }
    }

    /// <summary>Stops the readers (abandoning tiles not consumed) and waits for them to finish.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _cts.Cancel();
        try
        {
            Task.WaitAll([_producer, .. _readers]);
        }
        catch (AggregateException e) when (e.InnerExceptions.All(x => x is OperationCanceledException))
        {
            // Expected: the tasks were cancelled above.
        }
        _cts.Dispose();
    }
}
