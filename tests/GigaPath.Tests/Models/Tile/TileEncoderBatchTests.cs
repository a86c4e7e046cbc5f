using System.Runtime.InteropServices;
using GigaPath.Models.Tile;
using NUnit.Framework;

namespace GigaPath.Tests.Models.Tile;

/// <summary>
/// <see cref="TileEncoder.EmbedBatch"/>: the loader's pack-and-encode step, public for callers that batch tiles
/// themselves (the server's cross-request queue). Same floats as the loader, bad tiles named by the source, cancellation.
/// </summary>
public class TileEncoderBatchTests
{
    private static readonly string[] Files =
        new[] { "prov_normal_000_1.png", "01581x_25327y.png" }.Select(n => FixturePaths.Get("preprocess", n)).ToArray();

    private static bool Bitwise(float[] a, float[] b) => MemoryMarshal.AsBytes(a.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(b.AsSpan()));

    [Test]
    public void PreprocessedTilesGiveTheLoadersEmbeddingsBitForBit()
    {
        using var encoder = TileEncoder.Load(TinyTileFixture.Dir);
        var pixels = Files.Select(encoder.Preprocessor.PreprocessFile).ToList();
        using var loader = encoder.Embed(TileSource.FromFiles(Files), new TileEmbeddingOptions { BatchSize = 2 });
        using var batch = encoder.EmbedBatch(TileSource.FromPreprocessed(pixels, ["request a row 0", "request b row 0"]));
        Assert.That(batch.Count, Is.EqualTo(2));
        Assert.That(batch.Tokens, Is.Null);
        for (int i = 0; i < 2; i++)
            Assert.That(Bitwise(batch.ToArrays()[i], loader.ToArrays()[i]), Is.True, $"tile {i}");

        // Encoded images go through the same step, decoded and preprocessed by the encoder's own transform.
        var encoded = Files.Select(f => (ReadOnlyMemory<byte>)File.ReadAllBytes(f)).ToList();
        using var images = encoder.EmbedBatch(TileSource.FromImages(encoded));
        for (int i = 0; i < 2; i++)
            Assert.That(Bitwise(images.ToArrays()[i], loader.ToArrays()[i]), Is.True, $"image {i}");
        // With tokens the class token is pooled from the full forward (the CLS-only forward skips the last block's patch rows).
        using var withTokens = encoder.EmbedBatch(TileSource.FromImages(encoded), returnTokens: true);
        Assert.That(withTokens.Tokens!.shape, Is.EqualTo(new long[] { 2, encoder.Config.SequenceLength, encoder.Config.EmbedDim }));
        for (int i = 0; i < 2; i++)
            Assert.That(withTokens.ToArrays()[i], Is.EqualTo(loader.ToArrays()[i]).Within(1e-4f), $"image {i} with tokens");
    }

    [Test]
    public void ABadTileIsNamedByItsSourceName()
    {
        using var encoder = TileEncoder.Load(TinyTileFixture.Dir);
        var good = encoder.Preprocessor.PreprocessFile(Files[0]);
        var bad = (float[])good.Clone();
        bad[5] = float.NaN;
        var e = Assert.Throws<GigaPathException>(() => encoder.EmbedBatch(TileSource.FromPreprocessed([good, bad], ["request 7 row 0", "request 9 row 3"])));
        Assert.That(e!.Message, Does.StartWith("request 9 row 3 holds NaN or infinity"));

        var shortTile = new float[10];
        var wrong = Assert.Throws<GigaPathException>(() => encoder.EmbedBatch(TileSource.FromPreprocessed([good, shortTile])));
        Assert.That(wrong!.Message, Does.StartWith("tile 1: holds 10 values"));
        Assert.Throws<ArgumentException>(() => TileSource.FromPreprocessed([good], ["a", "b"]));
    }

    [Test]
    public void ACancelledTokenStopsTheBatch()
    {
        using var encoder = TileEncoder.Load(TinyTileFixture.Dir);
        var pixels = Files.Select(encoder.Preprocessor.PreprocessFile).ToList();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Catch<OperationCanceledException>(() => encoder.EmbedBatch(TileSource.FromPreprocessed(pixels), cancellationToken: cts.Token));
        using var after = encoder.EmbedBatch(TileSource.FromPreprocessed(pixels));
        Assert.That(after.Count, Is.EqualTo(2), "the encoder is usable after a cancelled batch");
    }
}
