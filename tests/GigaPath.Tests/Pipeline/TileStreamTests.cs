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

    [Test]
    public void ReadersStayABoundedNumberOfBatchesAhead()
    {
        int reads = 0;
        using var stream = new TileStream(1000, i =>
        {
            Interlocked.Increment(ref reads);
            return Tile(i);
        }, batchSize: 4, readers: 4, queueBatches: 3);
        Thread.Sleep(300);
        Assert.That(Volatile.Read(ref reads), Is.EqualTo(3 * 4), "the bounded channel holds 3 batches; the producer waits");
        Assert.That(stream.Next()!.Start, Is.EqualTo(0));
        Thread.Sleep(300);
        Assert.That(Volatile.Read(ref reads), Is.EqualTo(4 * 4), "one batch taken, one more read");
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
