using System.Text.Json;
using GigaPath.Models.Slide;
using NUnit.Framework;

namespace GigaPath.Tests.Models.Slide;

public class SlideEncoderConfigTests
{
    [Test]
    public void PublishedConfigurationMatchesTheReference()
    {
        var c = SlideEncoderConfig.ProvGigaPath;
        Assert.That((c.InputChannels, c.EmbedDim, c.Depth, c.HeadCount, c.FeedForwardDim, c.HeadDim), Is.EqualTo((1536, 768, 12, 16, 3072, 48)));
        Assert.That(c.SegmentLengths, Is.EqualTo(new[] { 1024, 5792, 32768, 185363, 1048576 }));
        Assert.That(c.DilationRatios, Is.EqualTo(new[] { 1, 2, 4, 8, 16 }));
        Assert.That((c.PositionGridSize, c.TileSize, c.OuterNormEps, c.EncoderLayerNormEps), Is.EqualTo((1000, 256, 1e-6, 1e-5)));
    }

    [TestCase(262144, 256, new[] { 1024, 5792, 32768, 185363, 1048576 })]
    // numpy 1.24: np.power(2, np.linspace(10, 19, 5)).astype(int) -> 2^16.75 = 110217.9 -> 110217
    // (docs/slide-encoder.md §1 lists 110376 for this case; that value is not what the reference computes).
    [TestCase(250000, 256, new[] { 1024, 4870, 23170, 110217, 524288 })]
    public void SegmentLengthsFollowGetOptimalSegmentLength(int maxWsi, int tile, int[] expected) =>
        Assert.That(SlideEncoderConfig.SegmentLengthsFor(maxWsi, tile), Is.EqualTo(expected));

    [Test]
    public void ParsesTheFixtureConfigs()
    {
        var tiny = SlideEncoderConfig.Load(FixturePaths.Get("slide_encoder_tiny", "config.json"));
        Assert.That((tiny.InputChannels, tiny.EmbedDim, tiny.Depth, tiny.HeadCount, tiny.FeedForwardDim), Is.EqualTo((32, 64, 2, 4, 256)));
        Assert.That(tiny.SegmentLengths, Is.EqualTo(new[] { 16, 32, 64 }));
        var misaligned = SlideEncoderConfig.Load(FixturePaths.Get("slide_encoder_tiny_misaligned", "config.json"));
        Assert.That(misaligned.DilationRatios, Is.EqualTo(new[] { 1, 4, 4 }));
        Assert.That(misaligned, Is.Not.EqualTo(tiny));
        Assert.That(misaligned with { SegmentLengths = [16, 32, 64], DilationRatios = [1, 2, 4] }, Is.EqualTo(tiny));
    }

    [Test]
    public void FieldErrorsReadLikeTheTileEncoderConfigs()
    {
        // Both model configs go through the same strict reader: the message names the file and the field, and so does Field.
        var json = SlideEncoderConfig.ProvGigaPath.ToJson().Replace("\"depth\": 12", "\"depth\": \"12\"", StringComparison.Ordinal);
        var e = Assert.Throws<ModelConfigException>(() => SlideEncoderConfig.FromJson(json, "slide/config.json"))!;
        Assert.That(e.Message, Is.EqualTo("slide/config.json: depth must be an integer, got \"12\""));
        Assert.That((e.ConfigSource, e.Field), Is.EqualTo(("slide/config.json", "depth")));
        var segments = SlideEncoderConfig.ProvGigaPath.ToJson().Replace("\"segment_length\": [", "\"segment_length\": [1.5, ", StringComparison.Ordinal);
        Assert.That(Assert.Throws<ModelConfigException>(() => SlideEncoderConfig.FromJson(segments, "s.json"))!.Field, Is.EqualTo("segment_length[0]"));
        Assert.That(Assert.Throws<ModelConfigException>(() => SlideEncoderConfig.FromJson("[1]", "s.json"))!.Message, Is.EqualTo("s.json: must hold a JSON object"));
    }

    [Test]
    public void WrittenConfigReadsBackEqual()
    {
        var dir = FixturePaths.TempDir();
        try
        {
            var path = Path.Combine(dir, "config.json");
            File.WriteAllText(path, SlideEncoderConfig.ProvGigaPath.ToJson());
            Assert.That(SlideEncoderConfig.Load(path), Is.EqualTo(SlideEncoderConfig.ProvGigaPath));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void MaxWsiSizeDerivesSegmentsAndDefaultsFillTheRest()
    {
        var c = Parse("""{"in_chans": 1536, "embed_dim": 768, "depth": 12, "num_heads": 16, "max_wsi_size": 250000}""");
        Assert.That(c.SegmentLengths, Is.EqualTo(new[] { 1024, 4870, 23170, 110217, 524288 }));
        Assert.That(c.DilationRatios, Is.EqualTo(new[] { 1, 2, 4, 8, 16 }));
        Assert.That(c.FeedForwardDim, Is.EqualTo(3072));
    }

    [TestCase("""{"in_chans": 32, "embed_dim": 64, "depth": 2, "num_heads": 4, "segment_lenght": [16]}""", "segment_lenght")]
    [TestCase("""{"embed_dim": 64, "depth": 2, "num_heads": 4}""", "in_chans")]
    [TestCase("""{"in_chans": 32, "embed_dim": 64, "depth": 2, "num_heads": 5}""", "num_heads")]
    [TestCase("""{"in_chans": 32, "embed_dim": 64, "depth": 2, "num_heads": 4, "head_dim": 8}""", "head_dim")]
    [TestCase("""{"in_chans": 32, "embed_dim": 64, "depth": 2, "num_heads": 4, "segment_length": [16, 32], "dilated_ratio": [1]}""", "dilated_ratio")]
    [TestCase("""{"in_chans": 32, "embed_dim": 64, "depth": 2, "num_heads": 4, "segment_length": [16, 0], "dilated_ratio": [1, 2]}""", "segment_length[1]")]
    [TestCase("""{"in_chans": 32, "embed_dim": 64, "depth": 2, "num_heads": 4, "ffn_dim": 100, "mlp_ratio": 4.0}""", "ffn_dim")]
    [TestCase("""{"in_chans": 32, "embed_dim": 64, "depth": 2, "num_heads": 4, "subln": false}""", "subln")]
    [TestCase("""{"in_chans": 32, "embed_dim": 64, "depth": 2, "num_heads": 4, "activation": "relu"}""", "activation")]
    [TestCase("""{"in_chans": "32", "embed_dim": 64, "depth": 2, "num_heads": 4}""", "in_chans")]
    [TestCase("""{"in_chans": 32, "embed_dim": 66, "depth": 2, "num_heads": 2}""", "embed_dim")]
    [TestCase("""{"in_chans": 32, "embed_dim": 64, "depth": 2, "num_heads": 4, "segment_length": [1024], "dilated_ratio": [1], "max_wsi_size": 262144}""", "max_wsi_size")]
    public void BadConfigNamesTheField(string json, string field)
    {
        var e = Assert.Throws<ModelConfigException>(() => Parse(json));
        Assert.That(e!.Message, Does.Contain(field));
    }

    private static SlideEncoderConfig Parse(string json)
    {
        var dir = FixturePaths.TempDir();
        try
        {
            var path = Path.Combine(dir, "config.json");
            File.WriteAllText(path, json);
            return SlideEncoderConfig.Load(path);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
