using System.Runtime.InteropServices;
using GigaPath.Models.Slide;
using GigaPath.Weights;
using NUnit.Framework;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Slide;

/// <summary>The slide encoder's async path: cancellation between layers, and concurrent calls on one encoder.</summary>
public class SlideEncoderAsyncTests
{
    private static TileFeatures Features()
    {
        using var scope = NewDisposeScope();
        using var input = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));
        var x = input.Load("tile_embeddings")[0].contiguous();
        var c = input.Load("coords")[0].to_type(ScalarType.Float64).contiguous();
        return new TileFeatures(x.data<float>().ToArray(), (int)x.shape[0], (int)x.shape[1], null, new Dictionary<string, object>(), "tiny")
        {
            TilingCoords = c.data<double>().ToArray(),
        };
    }

    [Test]
    public void CancellationStopsTheForwardBeforeTheNextLayer()
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny"));
        using var cts = new CancellationTokenSource();
        var seen = new List<string>();
        using var scope = NewDisposeScope();
        using var input = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));
        Assert.Throws<OperationCanceledException>(() => encoder.Embed(input.Load("tile_embeddings"), input.Load("coords"), false, (name, _) =>
        {
            seen.Add(name);
            if (name == "hidden_1") cts.Cancel();   // layer 0 done
        }, cts.Token));
        Assert.That(seen, Does.Contain("hidden_1"));
        Assert.That(seen, Does.Not.Contain("hidden_2"), "layer 1 never ran");
    }

    [Test]
    public async Task ConcurrentEmbedAsyncCallsGiveTheSequentialResult()
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny"));
        var features = Features();
        float[] reference;
        using (var one = encoder.Embed(features))
            reference = one.ClsEmbedding.data<float>().ToArray();
        var calls = Enumerable.Range(0, 12).Select(_ => Task.Run(async () =>
        {
            using var result = await encoder.EmbedAsync(features);
            return result.ClsEmbedding.data<float>().ToArray();
        }));
        foreach (var result in await Task.WhenAll(calls))
            Assert.That(MemoryMarshal.AsBytes(result.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(reference.AsSpan())), Is.True);
    }

    [Test]
    public async Task ACancelledTokenStopsEmbedAsync()
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny"));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.CatchAsync<OperationCanceledException>(async () => await encoder.EmbedAsync(Features(), cancellationToken: cts.Token));
    }
}
