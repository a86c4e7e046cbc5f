using GigaPath.Pipeline;
using NUnit.Framework;

namespace GigaPath.Tests.Pipeline;

public class TileStreamTests
{
    private static float[] Tile(int i) => [i];

    [Test]
    public void BatchesComeInInputOrderWhateverOrderTheReadersFinish([Values(1, 3, 8)] int readers)
    {
        var rng = new ThreadLocal<Random>(() => new Random(Environment.CurrentManagedThreadId));
        using var stream = new TileStream(53, i =>
        {
            Thread.Sleep(rng.Value!.Next(3));
            return Tile(i);
        }, batchSize: 5, readers: readers, queueBatches: 2);
        var seen = new List<int>();
        while (stream.Next() is { } batch)
        {
            Assert.That(batch.Start, Is.EqualTo(seen.Count));
            Assert.That(batch.Count, Is.EqualTo(Math.Min(5, 53 - batch.Start)));
            seen.AddRange(batch.Tiles.Select(t => (int)t[0]));
        }
        Assert.That(seen, Is.EqualTo(Enumerable.Range(0, 53)));
        Assert.That(stream.Next(), Is.Null, "stays at the end");
    }

    /// <summary>
    /// The bound is checked at every read, not after a sleep: a tile may only be read once its batch has a place in
    /// the 3-batch queue, so read n (1-based) needs n ≤ (3 + batches asked for) × 4. The read-ahead itself is awaited
    /// (with a timeout that only a hang reaches).
    /// </summary>
    [Test]
    public void ReadersStayABoundedNumberOfBatchesAhead()
    {
        const int batchSize = 4, queueBatches = 3;
        int reads = 0, asked = 0, worstExcess = int.MinValue;
        using var stream = new TileStream(1000, i =>
        {
            int n = Interlocked.Increment(ref reads);
            int excess = n - (queueBatches + Volatile.Read(ref asked)) * batchSize;
            int seen;
            while (excess > (seen = Volatile.Read(ref worstExcess)) && Interlocked.CompareExchange(ref worstExcess, excess, seen) != seen) { }
            return Tile(i);
        }, batchSize: batchSize, readers: 4, queueBatches: queueBatches);

        Assert.That(SpinWait.SpinUntil(() => Volatile.Read(ref reads) >= queueBatches * batchSize, TimeSpan.FromSeconds(60)), Is.True,
            "the readers fill the queue before anything is taken");
        for (int b = 0; b < 10; b++)
        {
            Interlocked.Increment(ref asked);
            Assert.That(stream.Next()!.Start, Is.EqualTo(b * batchSize));
            int target = (queueBatches + b + 1) * batchSize;
            Assert.That(SpinWait.SpinUntil(() => Volatile.Read(ref reads) >= target, TimeSpan.FromSeconds(60)), Is.True,
                $"batch {b} taken: the readers move on to tile {target - 1}");
        }
        Assert.That(worstExcess, Is.LessThanOrEqualTo(0), "no tile was read before its batch had a place in the queue");
    }

    [Test]
    public void AFailedTileSurfacesWhenItsBatchIsReached()
    {
        using var stream = new TileStream(20, i => i is 13 or 11 ? throw new GigaPathException($"tile {i} unreadable") : Tile(i),
            batchSize: 5, readers: 3, queueBatches: 2);
        Assert.That(stream.Next()!.Start, Is.EqualTo(0));
        Assert.That(stream.Next()!.Start, Is.EqualTo(5));
        var e = Assert.Throws<GigaPathException>(() => stream.Next());
        Assert.That(e!.Message, Is.EqualTo("tile 11 unreadable"), "the first bad tile of the batch in input order");
    }

    [Test]
    public void CancellationStopsAWaitingConsumer()
    {
        using var cancel = new CancellationTokenSource();
        using var gate = new ManualResetEventSlim();
        using var stream = new TileStream(10, i =>
        {
            gate.Wait();
            return Tile(i);
        }, batchSize: 2, readers: 2, queueBatches: 1, cancel.Token);
        cancel.CancelAfter(100);
        Assert.That(() => stream.Next(), Throws.InstanceOf<OperationCanceledException>());
        gate.Set();
    }

    [Test]
    public void BadSettingsAreRefused()
    {
        Assert.Throws<GigaPathException>(() => new TileStream(1, Tile, 0, 1, 1).Dispose());
        Assert.Throws<GigaPathException>(() => new TileStream(1, Tile, 1, 0, 1).Dispose());
        Assert.Throws<GigaPathException>(() => new TileStream(1, Tile, 1, 1, 0).Dispose());
    }
}
