using GigaPath.Cli;
using GigaPath.Tests.Models.Slide;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Cli;

public class EmbedSlideCommandTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    [TestCase("mean", "embed_global_pool", "layer_pool_")]
    [TestCase("cls", "embed_default", "layer_")]
    public void WritesTheReferenceOutputs(string pool, string expectedEmbedding, string expectedLayerPrefix)
    {
        var output = Path.Combine(_dir, "slide.safetensors");
        var (code, stdout, stderr) = Run("embed-slide", "--model", FixturePaths.Get("slide_encoder_tiny"),
            "--tiles", FixturePaths.Get("slide_encoder_tiny", "input.safetensors"), "--out", output, "--pool", pool, "--all-layers");
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.Contain("150 tiles"));

        using var file = SafeTensorsFile.Open(output);
        using var expected = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "expected.safetensors"));
        using var scope = NewDisposeScope();
        var actual = new Dictionary<string, Tensor>
        {
            [expectedEmbedding] = file.Load("slide_embedding"),
            ["last_hidden_state"] = file.Load("last_hidden_state"),
        };
        for (int i = 0; i <= 2; i++)
            actual[expectedLayerPrefix + i] = file.Load($"layer_{i}");
        var report = SlideEncoderFixtureTests.Compare(expected, actual, actual.Keys);
        TestContext.Out.WriteLine($"parity: slide_encoder_tiny embed-slide --pool {pool} --all-layers, {report.Count} tensors: max |diff| {report.Values.Max():E2}");
        Assert.That(file.GetInfo("tile_embeddings_ctx").Shape, Is.EqualTo(new long[] { 150, 64 }));
        Assert.That(file.Contains("layer_3"), Is.False);
        Assert.That(file.Metadata["pool"], Is.EqualTo(pool));
        Assert.That(file.Metadata["dtype"], Is.EqualTo("float32"));
        Assert.That(file.Metadata["slide_model_sha256"], Has.Length.EqualTo(64));
        Assert.That(file.Metadata["engine_version"], Is.Not.Empty);
    }

    [Test]
    public void DefaultPoolIsMeanAndLayersAreOptional()
    {
        var output = Path.Combine(_dir, "slide.safetensors");
        var (code, _, stderr) = Run("embed-slide", "--model", FixturePaths.Get("slide_encoder_tiny_short"),
            "--tiles", FixturePaths.Get("slide_encoder_tiny_short", "input.safetensors"), "--out", output);
        Assert.That(code, Is.EqualTo(0), stderr);
        using var file = SafeTensorsFile.Open(output);
        using var expected = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny_short", "expected.safetensors"));
        using var scope = NewDisposeScope();
        var report = SlideEncoderFixtureTests.Compare(expected, new Dictionary<string, Tensor> { ["embed_global_pool"] = file.Load("slide_embedding") }, ["embed_global_pool"]);
        TestContext.Out.WriteLine($"parity: slide_encoder_tiny_short embed-slide (default pool): max |diff| {report.Values.Max():E2}");
        Assert.That(file.Names, Is.EquivalentTo(new[] { "slide_embedding", "last_hidden_state", "tile_embeddings_ctx" }));
    }

    private static IEnumerable<TestCaseData> BadInputs()
    {
        yield return new TestCaseData("width", "'features' has shape [5, 31]: embeddings of 31 values; this model takes 32").SetName("WrongEmbeddingWidth");
        yield return new TestCaseData("nan", "tile 2 holds a non-finite feature value (NaN) at feature 7").SetName("NaNEmbedding");
        yield return new TestCaseData("inf", "tile 1 holds").SetName("InfiniteEmbedding");
        yield return new TestCaseData("outside", "tile 3 has y = 300000").SetName("CoordsOutsideGrid");
        yield return new TestCaseData("negative", "tile 0 has x = -5").SetName("NegativeCoords");
        yield return new TestCaseData("empty", "tiles.safetensors: holds no tiles (features [0, 32])").SetName("EmptySlide");
        yield return new TestCaseData("nocoords", "no coords").SetName("NoCoords");
        yield return new TestCaseData("mismatch", "holds 5 tiles but 'coords' holds 4").SetName("CountMismatch");
    }

    [TestCaseSource(nameof(BadInputs))]
    public void BadTilesFileExitsWithTwoAndNamesTheProblem(string kind, string message)
    {
        var tiles = Path.Combine(_dir, "tiles.safetensors");
        using (var scope = NewDisposeScope())
        {
            int n = kind switch { "empty" => 0, _ => 5 };
            var x = randn(n, kind == "width" ? 31 : 32);
            var c = stack([arange(n) * 256, arange(n) * 512], 1).to_type(ScalarType.Int64);
            if (kind == "nan") x[2, 7] = tensor(float.NaN);
            if (kind == "inf") x[1, 0] = tensor(float.PositiveInfinity);
            if (kind == "outside") c[3, 1] = tensor(300000L);
            if (kind == "negative") c[0, 0] = tensor(-5L);
            if (kind == "mismatch") c = c.narrow(0, 0, 4);
            var tensors = new Dictionary<string, Tensor> { ["features"] = x };
            if (kind != "nocoords") tensors["coords"] = c;
            SafeTensorsWriter.Write(tiles, tensors);
        }
        var (code, _, stderr) = Run("embed-slide", "--model", FixturePaths.Get("slide_encoder_tiny"), "--tiles", tiles,
            "--out", Path.Combine(_dir, "out.safetensors"));
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain(message));
        Assert.That(File.Exists(Path.Combine(_dir, "out.safetensors")), Is.False);
    }

    [TestCase("--pool", "max", "--pool 'max'")]
    [TestCase("--dtype", "int8", "dtype 'int8'")]
    [TestCase("--dtype", "float16", "float16 is only supported on CUDA")]
    [TestCase("--device", "tpu", "device 'tpu'")]
    [TestCase("--model", "/nonexistent/model", "/nonexistent/model")]
    [TestCase("--tiles", "/nonexistent/tiles.h5", "/nonexistent/tiles.h5")]
    public void BadOptionExitsWithTwoAndNamesIt(string option, string value, string message)
    {
        var args = new Dictionary<string, string>
        {
            ["--model"] = FixturePaths.Get("slide_encoder_tiny"),
            ["--tiles"] = FixturePaths.Get("slide_encoder_tiny", "input.safetensors"),
            ["--out"] = Path.Combine(_dir, "out.safetensors"),
            [option] = value,
        };
        var (code, _, stderr) = Run(new[] { "embed-slide" }.Concat(args.SelectMany(kv => new[] { kv.Key, kv.Value })).ToArray());
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain(message));
    }

    internal static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var oldOut = Console.Out;
        var oldErr = Console.Error;
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            int code = Program.Main(args);
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }
}
