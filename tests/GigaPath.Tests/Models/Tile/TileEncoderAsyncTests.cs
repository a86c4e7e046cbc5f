using System.Runtime.InteropServices;
using GigaPath.Models.Tile;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Tile;

/// <summary>
/// The library's tile path without TorchSharp in the caller's code: sources from files, bytes and streams, one loader,
/// async with progress and cancellation, embeddings as floats, and concurrent use of one encoder.
/// </summary>
public class TileEncoderAsyncTests
{
    private static readonly string[] Names = ["prov_normal_000_1.png", "01581x_25327y.png"];

    private static string[] Files => Names.Select(n => FixturePaths.Get("preprocess", n)).ToArray();

    private static bool Bitwise(float[] a, float[] b) => MemoryMarshal.AsBytes(a.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(b.AsSpan()));

    /// <summary>
    /// The fixture's images through EmbedImages (paths), each alone: the reference for single-image calls. (Results
    /// do not depend on the batch to float32 rounding; bit for bit they are compared with calls of the same batches.)
    /// </summary>
    private static float[][] Reference(TileEncoder encoder) => Files.Select(f =>
    {
        using var result = encoder.EmbedImages([f]);
        return result.ToArrays()[0];
    }).ToArray();

    [Test]
    public async Task BytesStreamsAndFilesGiveTheSameFloatsAsThePathApi()
    {
        using var encoder = await TileEncoder.LoadAsync(TinyTileFixture.Dir);
        var reference = Reference(encoder);
        Assert.That(reference[0], Has.Length.EqualTo(48));

        var bytes = Files.Select(File.ReadAllBytes).ToArray();
        for (int i = 0; i < bytes.Length; i++)
        {
            Assert.That(Bitwise(await encoder.EmbedImageAsync(bytes[i]), reference[i]), Is.True, $"bytes {i}");
            using var stream = new MemoryStream(bytes[i]);
            Assert.That(Bitwise(await encoder.EmbedImageAsync(stream), reference[i]), Is.True, $"stream {i}");
        }
        using var pair = encoder.EmbedImages(Files);
        using var fromStreams = await encoder.EmbedAsync(TileSource.FromStreams(bytes.Select(b => new MemoryStream(b))));
        using var fromFiles = await encoder.EmbedAsync(TileSource.FromFiles(Files), new TileEmbeddingOptions { BatchSize = 1, Readers = 1 });
        for (int i = 0; i < bytes.Length; i++)
        {
            Assert.That(Bitwise(fromStreams.ToArrays()[i], pair.ToArrays()[i]), Is.True, $"streams source {i}");
            Assert.That(Bitwise(fromFiles.ToArrays()[i], reference[i]), Is.True, $"files source, batch 1 {i}");
        }
    }

    [Test]
    public async Task ProgressIsReportedAfterEveryBatchAndBatchesStreamInOrder()
    {
        using var encoder = TileEncoder.Load(TinyTileFixture.Dir);
        var files = Enumerable.Range(0, 5).Select(i => Files[i % 2]).ToArray();
        var reports = new List<TileProgress>();
        using var all = await encoder.EmbedAsync(TileSource.FromFiles(files), new TileEmbeddingOptions { BatchSize = 2 }, new SyncProgress(reports.Add));
        Assert.That(reports.Select(r => r.Done), Is.EqualTo(new[] { 2, 4, 5 }));
        Assert.That(reports.All(r => r.Total == 5), Is.True);

        var rows = all.ToArrays();
        var starts = new List<int>();
        await foreach (var batch in encoder.EmbedBatchesAsync(TileSource.FromFiles(files), new TileEmbeddingOptions { BatchSize = 2 }))
        {
            starts.Add(batch.Start);
            for (int i = 0; i < batch.Count; i++)
                Assert.That(Bitwise(batch[i].ToArray(), rows[batch.Start + i]), Is.True, $"tile {batch.Start + i}");
            Assert.That(batch.Progress.Done, Is.EqualTo(batch.Start + batch.Count));
        }
        Assert.That(starts, Is.EqualTo(new[] { 0, 2, 4 }));
    }

    [Test]
    public void CancellationStopsAForwardWithinOneBlock()
    {
        // A 6-block model: cancel while block 2 runs (from the observer, which the forward calls after each block);
        // block 3 must never start.
        var config = TinyTileFixture.Config with { Depth = 6, SourceName = "six blocks" };
        using var encoder = TileEncoder.CreateRandom(config, seed: 3);
        using var cts = new CancellationTokenSource();
        var seen = new List<string>();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Assert.Throws<OperationCanceledException>(() => encoder.Model.ForwardFeatures(TinyTileFixture.Pixels(), (name, _) =>
        {
            seen.Add(name);
            if (name == "blocks.2") cts.Cancel();
        }, cts.Token));
        Assert.That(seen, Does.Contain("blocks.2"));
        Assert.That(seen.Any(n => n.StartsWith("blocks.3", StringComparison.Ordinal)), Is.False, "no work after the block in which it was cancelled");
    }

    [Test]
    public async Task CancellingARunStopsItBetweenBatches()
    {
        using var encoder = TileEncoder.Load(TinyTileFixture.Dir);
        using var cts = new CancellationTokenSource();
        var reports = new List<int>();
        var files = Enumerable.Range(0, 8).Select(i => Files[i % 2]).ToArray();
        await Assert.CatchAsync<OperationCanceledException>(async () =>
        {
            using var _ = await encoder.EmbedAsync(TileSource.FromFiles(files), new TileEmbeddingOptions { BatchSize = 2 },
                new SyncProgress(p => { reports.Add(p.Done); cts.Cancel(); }), cts.Token);
        });
        Assert.That(reports, Is.EqualTo(new[] { 2 }), "the first batch finished, nothing after the cancellation");
    }

    [Test]
    public async Task ABadImageIsNamed()
    {
        using var encoder = TileEncoder.Load(TinyTileFixture.Dir);
        var images = new ReadOnlyMemory<byte>[] { File.ReadAllBytes(Files[0]), new byte[] { 1, 2, 3, 4 } };
        var e = (await Assert.ThrowsAsync<ImageDecodeException>(async () => await encoder.EmbedAsync(TileSource.FromImages(images, ["good.png", "upload-7.png"]))))!;
        Assert.That(e.Message, Does.StartWith("upload-7.png"));
    }

    /// <summary>
    /// The documented contract: one encoder may be called from several threads at once; forwards are serialised and
    /// each result is what the call alone gives, bit for bit.
    /// </summary>
    [Test]
    public async Task ConcurrentCallsOnOneEncoderGiveTheSequentialResults()
    {
        using var encoder = TileEncoder.Load(TinyTileFixture.Dir);
        var reference = Reference(encoder);
        var bytes = Files.Select(File.ReadAllBytes).ToArray();
        var calls = Enumerable.Range(0, 48).Select(i => Task.Run(async () =>
        {
            int which = i % 2;
            if (i % 3 == 0)
            {
                using var r = encoder.EmbedImages([Files[which]]);
                return (which, r.ToArrays()[0]);
            }
            return (which, await encoder.EmbedImageAsync(bytes[which]));
        })).ToArray();
        foreach (var (which, embedding) in await Task.WhenAll(calls))
            Assert.That(Bitwise(embedding, reference[which]), Is.True);
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    private sealed class SyncProgress(Action<TileProgress> report) : IProgress<TileProgress>
    {
        public void Report(TileProgress value) => report(value);
    }
}
