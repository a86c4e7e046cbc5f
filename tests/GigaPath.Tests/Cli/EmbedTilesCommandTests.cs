using GigaPath.Runtime;
using GigaPath.Tests.Models.Tile;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Cli;

/// <summary>embed-tiles end to end on the tiny fixture model: pixels and real images, outputs and provenance.</summary>
public class EmbedTilesCommandTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("embed-tiles");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private static string Preprocess(string name) => FixturePaths.Get("preprocess", name);

    private CliInvocation Embed(params string[] args) =>
        CliInvocation.Run(["embed-tiles", "--model", TinyTileFixture.Dir, .. args]);

    [Test]
    public void PixelsGiveTheFixtureEmbeddingsTokensAndProvenance()
    {
        var output = Path.Combine(_dir, "out.safetensors");
        var run = Embed("--out", output, "--pixels", FixturePaths.Get("tile_encoder_tiny", "input.safetensors"), "--tokens", "--batch-size", "1");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());

        using var scope = NewDisposeScope();
        using var result = SafeTensorsFile.Open(output);
        using var expected = SafeTensorsFile.Open(FixturePaths.Get("tile_encoder_tiny", "expected.safetensors"));
        Assert.That(result.Names, Is.EquivalentTo(new[] { "embeddings", "tokens" }), "no coords without image names");
        Parity.Check("tile_encoder_tiny embed-tiles --pixels: embeddings", TinyTileFixture.MaxAbsDiff(result.Load("embeddings"), expected.Load("embedding")));
        Parity.Check("tile_encoder_tiny embed-tiles --pixels: tokens", TinyTileFixture.MaxAbsDiff(result.Load("tokens"), expected.Load("tokens")));
        Assert.That(result.GetInfo("embeddings").DType, Is.EqualTo(TensorDType.F32));
        var meta = result.Metadata;
        Assert.That(meta["tile_model_sha256"], Is.EqualTo(FileHashing.Sha256(FixturePaths.Get("tile_encoder_tiny", "model.safetensors"))));
        Assert.That(meta["dtype"], Is.EqualTo("float32"));
        Assert.That(meta["engine_version"], Is.EqualTo(EngineInfo.Version));
        Assert.That(meta["model_config"], Does.Contain("vit_giant_patch14_dinov2").And.Contain("dim 48"));
        Assert.That(meta["model"], Is.EqualTo("tile_encoder_tiny"));
    }

    [Test]
    public void ResultsDoNotDependOnBatchSize()
    {
        var input = FixturePaths.Get("tile_encoder_tiny", "input.safetensors");
        var one = Path.Combine(_dir, "b1.safetensors");
        var two = Path.Combine(_dir, "b2.safetensors");
        Assert.That(Embed("--out", one, "--pixels", input, "--batch-size", "1").ExitCode, Is.EqualTo(0));
        Assert.That(Embed("--out", two, "--pixels", input, "--batch-size", "2").ExitCode, Is.EqualTo(0));
        using var scope = NewDisposeScope();
        using var a = SafeTensorsFile.Open(one);
        using var b = SafeTensorsFile.Open(two);
        Assert.That(TinyTileFixture.MaxAbsDiff(a.Load("embeddings"), b.Load("embeddings")), Is.LessThanOrEqualTo(1e-6));
    }

    [Test]
    public void ImagesGiveTheReferenceEmbeddingsInInputOrder()
    {
        // expected.safetensors holds prov_normal_000_1 first, then 01581x_25327y.
        var output = Path.Combine(_dir, "img.safetensors");
        var run = Embed("--out", output, Preprocess("prov_normal_000_1.png"), Preprocess("01581x_25327y.png"));
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        using var scope = NewDisposeScope();
        using var result = SafeTensorsFile.Open(output);
        using var expected = SafeTensorsFile.Open(Preprocess("expected.safetensors"));
        Parity.Check("preprocess embed-tiles (2 PNG files): embeddings", TinyTileFixture.MaxAbsDiff(result.Load("embeddings"), expected.Load("embedding")));
        Assert.That(result.Contains("coords"), Is.False, "prov_normal_000_1.png has no coordinates in its name");
    }

    [Test]
    public void FoldersAreSortedAndCoordinatesComeFromFileNames()
    {
        var tiles = Directory.CreateDirectory(Path.Combine(_dir, "tiles")).FullName;
        File.Copy(Preprocess("01581x_25327y.png"), Path.Combine(tiles, "01581x_25327y.png"));
        File.Copy(Preprocess("prov_normal_000_1.png"), Path.Combine(tiles, "00012x_00034y.png"));
        File.WriteAllText(Path.Combine(tiles, "notes.txt"), "not a tile");
        var output = Path.Combine(_dir, "coords.safetensors");
        var run = Embed("--out", output, tiles);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());

        using var scope = NewDisposeScope();
        using var result = SafeTensorsFile.Open(output);
        using var expected = SafeTensorsFile.Open(Preprocess("expected.safetensors"));
        var coords = result.Load("coords");
        Assert.That(coords.dtype, Is.EqualTo(ScalarType.Int64));
        Assert.That(coords.data<long>().ToArray(), Is.EqualTo(new long[] { 12, 34, 1581, 25327 }));
        // Sorted order is 00012x_00034y (= prov_normal_000_1) then 01581x_25327y: the fixture's order.
        Parity.Check("preprocess embed-tiles (folder): embeddings", TinyTileFixture.MaxAbsDiff(result.Load("embeddings"), expected.Load("embedding")));
    }

    [Test]
    public void BFloat16RunRecordsItsDtype()
    {
        var output = Path.Combine(_dir, "bf16.safetensors");
        var run = Embed("--out", output, "--pixels", FixturePaths.Get("tile_encoder_tiny", "input.safetensors"), "--dtype", "bfloat16",
            "--allow-slow-dtype"); // the tiny model runs in milliseconds even where bfloat16 is emulated
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        using var result = SafeTensorsFile.Open(output);
        Assert.That(result.Metadata["dtype"], Is.EqualTo("bfloat16"));
        Assert.That(result.GetInfo("embeddings").DType, Is.EqualTo(TensorDType.F32));
    }
}
