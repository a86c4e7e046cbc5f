using GigaPath.Models.Tile;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;
using GigaPath.Models;

namespace GigaPath.Tests.Models.Tile;

/// <summary>The tiny timm fixture reproduced stage by stage (float32, CPU) and in bfloat16.</summary>
public class TileEncoderParityTests
{
    private static string TinyDir => TinyTileFixture.Dir;

    private static Tensor Pixels() => TinyTileFixture.Pixels();

    private static double MaxAbsDiff(Tensor a, Tensor b) => TinyTileFixture.MaxAbsDiff(a, b);

    [Test]
    public void EmbeddingAndTokensMatchTimm()
    {
        using var scope = NewDisposeScope();
        using var encoder = TileEncoder.Load(TinyDir);
        using var expected = SafeTensorsFile.Open(FixturePaths.Get("tile_encoder_tiny", "expected.safetensors"));
        using var result = encoder.Embed(Pixels(), returnTokens: true);

        Parity.Check("tile_encoder_tiny embedding", MaxAbsDiff(result.Embeddings, expected.Load("embedding")));
        Parity.Check("tile_encoder_tiny tokens", MaxAbsDiff(result.Tokens!, expected.Load("tokens")));
        Assert.That(result.Embeddings.dtype, Is.EqualTo(ScalarType.Float32));
        Assert.That(result.Embeddings.device_type, Is.EqualTo(DeviceType.CPU));
    }

    /// <summary>
    /// Asked for embeddings only, the last block computes the CLS token alone (per tile); that path must match timm as
    /// well, and the full-token path up to float rounding.
    /// </summary>
    [Test]
    public void EmbeddingsOnlyPathMatchesTimmAndTheFullPass()
    {
        using var scope = NewDisposeScope();
        using var encoder = TileEncoder.Load(TinyDir);
        using var expected = SafeTensorsFile.Open(FixturePaths.Get("tile_encoder_tiny", "expected.safetensors"));
        using var clsOnly = encoder.Embed(Pixels());
        using var full = encoder.Embed(Pixels(), returnTokens: true);
        Assert.That(clsOnly.Tokens, Is.Null);
        Parity.Check("tile_encoder_tiny embedding (CLS-only last block)", MaxAbsDiff(clsOnly.Embeddings, expected.Load("embedding")));
        double vsFull = MaxAbsDiff(clsOnly.Embeddings, full.Embeddings);
        TestContext.Out.WriteLine($"CLS-only vs full last block: max abs diff {vsFull:E2}");
        Assert.That(vsFull, Is.LessThanOrEqualTo(1e-5), "another GEMM shape, another float32 rounding (measured 1.1e-6)");
    }

    [Test]
    public void EveryIntermediateMatchesTimm()
    {
        using var scope = NewDisposeScope();
        using var encoder = TileEncoder.Load(TinyDir);
        using var expected = SafeTensorsFile.Open(FixturePaths.Get("tile_encoder_tiny", "expected.safetensors"));
        var seen = new Dictionary<string, Tensor>();
        using (no_grad())
            encoder.Model.ForwardFeatures(Pixels(), (name, t) => seen[name] = t.clone().MoveToOuterDisposeScope());

        var names = expected.Names.Where(n => n.StartsWith("intermediate.", StringComparison.Ordinal)).ToList();
        Assert.That(names, Has.Count.EqualTo(7));
        foreach (var name in names)
        {
            var key = name["intermediate.".Length..];
            Assert.That(seen, Contains.Key(key));
            Parity.Check($"tile_encoder_tiny {name}", MaxAbsDiff(seen[key], expected.Load(name)));
        }
    }

    [Test]
    public void BatchOfTwoEqualsOneAtATime()
    {
        using var scope = NewDisposeScope();
        using var encoder = TileEncoder.Load(TinyDir);
        var pixels = Pixels();
        using var both = encoder.Embed(pixels, returnTokens: true);
        for (int i = 0; i < 2; i++)
        {
            using var one = encoder.Embed(pixels.narrow(0, i, 1), returnTokens: true);
            double diff = Math.Max(MaxAbsDiff(one.Tokens!, both.Tokens!.narrow(0, i, 1)), MaxAbsDiff(one.Embeddings, both.Embeddings.narrow(0, i, 1)));
            TestContext.Out.WriteLine($"tile {i}: batch-of-2 vs alone max abs diff {diff:E2}");
            Assert.That(diff, Is.LessThanOrEqualTo(1e-6));
        }
    }

    [Test]
    public void BFloat16StaysCloseToFloat32()
    {
        using var scope = NewDisposeScope();
        using var f32 = TileEncoder.Load(TinyDir);
        using var bf16 = TileEncoder.Load(TinyDir, new EncoderOptions { DType = ScalarType.BFloat16, AllowSlowDType = true /* tiny model: fast even when emulated */ });
        Assert.That(bf16.Model.parameters().All(p => p.dtype == ScalarType.BFloat16), Is.True);
        var pixels = Pixels();
        using var a = f32.Embed(pixels);
        using var b = bf16.Embed(pixels);
        Assert.That(b.Embeddings.dtype, Is.EqualTo(ScalarType.Float32));
        var cos = nn.functional.cosine_similarity(a.Embeddings, b.Embeddings, dim: 1);
        double min = cos.min().item<float>();
        TestContext.Out.WriteLine($"bfloat16 vs float32 cosine per tile: {string.Join(", ", cos.data<float>().ToArray().Select(c => c.ToString("F6")))}");
        Assert.That(min, Is.GreaterThanOrEqualTo(0.999));
    }
}
