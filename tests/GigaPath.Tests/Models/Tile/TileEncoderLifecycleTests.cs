using GigaPath.Models.Tile;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;
using GigaPath.Models;

namespace GigaPath.Tests.Models.Tile;

/// <summary>Random creation, saving, reloading (single file and sharded), hashing and input validation.</summary>
public class TileEncoderLifecycleTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("tile-lifecycle");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private static TileEncoderConfig Tiny => TinyTileFixture.Config;

    private static Tensor Pixels() => TinyTileFixture.Pixels();

    private static bool Same(Tensor a, Tensor b) => TinyTileFixture.BitwiseEqual(a, b);

    [Test]
    public void RandomModelsAreDeterministicPerSeed()
    {
        using var scope = NewDisposeScope();
        using var a = TileEncoder.CreateRandom(Tiny, seed: 7);
        using var b = TileEncoder.CreateRandom(Tiny, seed: 7);
        using var c = TileEncoder.CreateRandom(Tiny, seed: 8);
        Assert.That(a.WeightsSha256, Is.EqualTo(b.WeightsSha256));
        Assert.That(a.WeightsSha256, Is.Not.EqualTo(c.WeightsSha256));
        var pixels = Pixels();
        using var ea = a.Embed(pixels);
        using var eb = b.Embed(pixels);
        Assert.That(Same(ea.Embeddings, eb.Embeddings), Is.True);
        // The recipe keeps activations O(1): LayerScale near 0.5, LayerNorm weights near 1.
        Assert.That(ea.Embeddings.abs().max().item<float>(), Is.GreaterThan(0.1f).And.LessThan(100f));
    }

    [Test]
    public void SaveThenLoadGivesTheSameEmbeddingsAndHashesTheFile()
    {
        using var scope = NewDisposeScope();
        using var random = TileEncoder.CreateRandom(Tiny, seed: 3);
        random.Save(_dir);
        Assert.That(Directory.GetFiles(_dir).Select(Path.GetFileName).Order(), Is.EqualTo(new[] { "config.json", "model.safetensors" }));
        using var loaded = TileEncoder.Load(_dir);
        Assert.That(loaded.Config, Is.EqualTo(random.Config));
        Assert.That(loaded.WeightsSha256, Is.EqualTo(FileHashing.Sha256(Path.Combine(_dir, "model.safetensors"))));
        var pixels = Pixels();
        using var a = random.Embed(pixels, returnTokens: true);
        using var b = loaded.Embed(pixels, returnTokens: true);
        Assert.That(Same(a.Tokens!, b.Tokens!), Is.True);
    }

    [Test]
    public void LoadsAShardedCheckpoint()
    {
        using var scope = NewDisposeScope();
        using var tiny = SafeTensorsFile.Open(FixturePaths.Get("tile_encoder_tiny", "model.safetensors"));
        var names = tiny.Names.ToList();
        var shards = new[] { names.Take(10).ToList(), names.Skip(10).ToList() };
        var map = new System.Text.Json.Nodes.JsonObject();
        for (int s = 0; s < 2; s++)
        {
            var file = $"model-0000{s + 1}-of-00002.safetensors";
            SafeTensorsWriter.Write(Path.Combine(_dir, file), shards[s].Select(n => KeyValuePair.Create(n, tiny.Load(n))));
            foreach (var n in shards[s]) map[n] = file;
        }
        File.WriteAllText(Path.Combine(_dir, "model.safetensors.index.json"), new System.Text.Json.Nodes.JsonObject { ["weight_map"] = map }.ToJsonString());
        File.Copy(FixturePaths.Get("tile_encoder_tiny", "config.json"), Path.Combine(_dir, "config.json"));

        using var sharded = TileEncoder.Load(_dir);
        using var single = TileEncoder.Load(FixturePaths.Get("tile_encoder_tiny"));
        var pixels = Pixels();
        using var a = sharded.Embed(pixels);
        using var b = single.Embed(pixels);
        Assert.That(Same(a.Embeddings, b.Embeddings), Is.True);
        Assert.That(sharded.WeightsSha256, Is.EqualTo(FileHashing.Sha256(new[]
            { Path.Combine(_dir, "model-00001-of-00002.safetensors"), Path.Combine(_dir, "model-00002-of-00002.safetensors") })));
    }

    [Test]
    public void LoadsFromAWeightFilePathNextToItsConfig()
    {
        using var scope = NewDisposeScope();
        var file = FixturePaths.Get("tile_encoder_tiny", "model.safetensors");
        using var encoder = TileEncoder.Load(file);
        Assert.That(encoder.WeightsSha256, Is.EqualTo(FileHashing.Sha256(file)));
        Assert.That(encoder.ParameterCount, Is.EqualTo(103_376L));
    }

    [Test]
    public void MissingModelFolderIsNamed()
    {
        var missing = Path.Combine(_dir, "no-model-here");
        var e = Assert.Throws<ModelNotFoundException>(() => TileEncoder.Load(missing))!;
        Assert.That(e.Message, Does.StartWith(missing));
    }

    [Test]
    public void Float16OnCpuIsRefused()
    {
        var e = Assert.Throws<GigaPathException>(() =>
            TileEncoder.Load(FixturePaths.Get("tile_encoder_tiny"), new EncoderOptions { DType = ScalarType.Float16 }))!;
        Assert.That(e.Message, Does.Contain("float16").And.Contain("CPU"));
    }

    [TestCase(new long[] { 3, 224, 224 }, ScalarType.Float32, "rank 3")]
    [TestCase(new long[] { 1, 4, 224, 224 }, ScalarType.Float32, "4 channels")]
    [TestCase(new long[] { 1, 3, 256, 256 }, ScalarType.Float32, "256x256 pixels")]
    [TestCase(new long[] { 0, 3, 224, 224 }, ScalarType.Float32, "no tiles")]
    [TestCase(new long[] { 1, 3, 224, 224 }, ScalarType.Float64, "dtype Float64")]
    public void EmbedRejectsBadPixelTensors(long[] shape, ScalarType dtype, string expected)
    {
        using var encoder = TileEncoder.Load(FixturePaths.Get("tile_encoder_tiny"));
        using var pixels = zeros(shape, dtype);
        var e = Assert.Throws<GigaPathException>(() => encoder.Embed(pixels))!;
        Assert.That(e.Message, Does.StartWith("pixel_values: ").And.Contain(expected).And.Contain("[" + string.Join(", ", shape) + "]"));
    }
}
