using GigaPath.Models.Tile;
using GigaPath.Pipeline;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Tile;

/// <summary>The full-size (1.1 B-parameter) tile encoder: opt-in, minutes of CPU and 5 GB of memory.</summary>
public class TileEncoderFullSizeTests
{
    public const string ModelVariable = "GIGAPATH_TILE_MODEL";

    private static Tensor ImagePixels(TileEncoderConfig config, params string[] names)
    {
        var preprocessor = config.CreatePreprocessor();
        return preprocessor.ToBatch(names.Select(n => preprocessor.PreprocessFile(FixturePaths.Get("preprocess", n))).ToList());
    }

    [Test, Category("RealWeights")]
    public void RealWeightsReproduceTheAuthorsEmbedding()
    {
        var dir = Environment.GetEnvironmentVariable(ModelVariable);
        if (string.IsNullOrWhiteSpace(dir))
            Assert.Ignore($"set {ModelVariable} to a converted Prov-GigaPath tile encoder folder (config.json + model.safetensors, see `gigapath convert-weights`) to run this test");

        using var scope = NewDisposeScope();
        using var encoder = TileEncoder.Load(dir);
        Assert.That(encoder.Config, Is.EqualTo(TileEncoderConfig.ProvGigaPath with { SourceName = encoder.Config.SourceName }));
        using var result = encoder.Embed(ImagePixels(encoder.Config, "prov_normal_000_1.png"), returnTokens: true);
        using var reference = SafeTensorsFile.Open(FixturePaths.Get("preprocess", "full_model_reference.safetensors"));
        var expected = reference.Load("embedding");
        double embDiff = TinyTileFixture.MaxAbsDiff(result.Embeddings, expected);
        double tokDiff = TinyTileFixture.MaxAbsDiff(result.Tokens!, reference.Load("tokens"));
        double cosine = nn.functional.cosine_similarity(result.Embeddings, expected, dim: 1).item<float>();
        TestContext.Out.WriteLine($"real weights vs authors' output: embedding max abs diff {embDiff:E3}, tokens {tokDiff:E3}, cosine {cosine:F7}; weights sha256 {encoder.WeightsSha256}");
        // The upstream demo checks this output with atol 1e-2; the tokens are the same tensor (row 0 is the
        // embedding), so they are held to the same bound.
        Assert.That(embDiff, Is.LessThanOrEqualTo(1e-2));
        Assert.That(tokDiff, Is.LessThanOrEqualTo(1e-2));
        Assert.That(cosine, Is.GreaterThanOrEqualTo(0.9999));
    }

    [Test, Category("Slow")]
    public void FullSizeRandomModelRunsAndIsBatchInvariant()
    {
        using var scope = NewDisposeScope();
        var config = TileEncoderConfig.ProvGigaPath;
        using var encoder = TileEncoder.CreateRandom(config, seed: 1);
        Assert.That(encoder.ParameterCount, Is.EqualTo(1_134_953_984L));
        var pixels = ImagePixels(config, "prov_normal_000_1.png", "01581x_25327y.png");
        using var both = encoder.Embed(pixels, returnTokens: true);
        using var first = encoder.Embed(pixels.narrow(0, 0, 1));

        Assert.That(both.Embeddings.shape, Is.EqualTo(new long[] { 2, 1536 }));
        Assert.That(both.Tokens!.shape, Is.EqualTo(new long[] { 2, 197, 1536 }));
        Assert.That(both.Tokens.isfinite().all().item<bool>(), Is.True);
        Assert.That(TinyTileFixture.BitwiseEqual(both.Tokens.select(1, 0), both.Embeddings), Is.True, "embedding is the CLS token");
        double diff = TinyTileFixture.MaxAbsDiff(first.Embeddings, both.Embeddings.narrow(0, 0, 1));
        TestContext.Out.WriteLine($"full-size random model: tile alone vs in a batch of 2, max abs diff {diff:E2}");
        Assert.That(diff, Is.LessThanOrEqualTo(1e-6));
    }
}
