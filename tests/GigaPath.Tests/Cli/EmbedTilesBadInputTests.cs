using System.Text;
using System.Text.Json.Nodes;
using GigaPath.Tests.Models.Tile;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Cli;

/// <summary>Every kind of bad model folder, checkpoint or input ends in exit code 2 with the culprit named.</summary>
public class EmbedTilesBadInputTests
{
    private string _dir = "";
    private string _model = "";

    [SetUp]
    public void SetUp()
    {
        _dir = FixturePaths.TempDir("embed-tiles-bad");
        _model = Directory.CreateDirectory(Path.Combine(_dir, "model")).FullName;
        File.Copy(FixturePaths.Get("tile_encoder_tiny", "config.json"), Path.Combine(_model, "config.json"));
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private string Out => Path.Combine(_dir, "out.safetensors");

    private CliInvocation RunOnPixels(string? pixels = null) =>
        CliInvocation.Run("embed-tiles", "--model", _model, "--out", Out, "--pixels", pixels ?? FixturePaths.Get("tile_encoder_tiny", "input.safetensors"));

    private static void AssertUserError(CliInvocation run, params string[] fragments)
    {
        TestContext.Out.WriteLine(run.Error.Trim());
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.StartWith("error: "));
        foreach (var f in fragments)
            Assert.That(run.Error, Does.Contain(f));
    }

    private void CopyTinyWeights() => File.Copy(FixturePaths.Get("tile_encoder_tiny", "model.safetensors"), Path.Combine(_model, "model.safetensors"));

    private void EditConfig(Action<JsonObject> edit)
    {
        var path = Path.Combine(_model, "config.json");
        var json = (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    /// <summary>The tiny weights with some tensors dropped or replaced, plus <paramref name="extra"/> ones.</summary>
    private void WriteWeights(Func<string, Tensor, Tensor?> transform, params (string Name, Tensor Value)[] extra)
    {
        using var scope = NewDisposeScope();
        using var tiny = SafeTensorsFile.Open(FixturePaths.Get("tile_encoder_tiny", "model.safetensors"));
        var tensors = tiny.Names.Select(n => (Name: n, Value: transform(n, tiny.Load(n)))).Concat(extra.Select(e => (Name: e.Name, Value: (Tensor?)e.Value)))
            .Where(p => p.Value is not null).Select(p => KeyValuePair.Create(p.Name, p.Value!));
        SafeTensorsWriter.Write(Path.Combine(_model, "model.safetensors"), tensors);
    }

    [Test]
    public void UnknownArchitecture()
    {
        CopyTinyWeights();
        EditConfig(j => j["architecture"] = "vit_base_patch16_224");
        AssertUserError(RunOnPixels(), "config.json", "architecture", "vit_base_patch16_224");
    }

    [Test]
    public void InconsistentConfigField()
    {
        CopyTinyWeights();
        EditConfig(j => j["model_args"]!["num_heads"] = 5);
        AssertUserError(RunOnPixels(), "config.json", "model_args.embed_dim", "num_heads 5");
    }

    [Test]
    public void MissingWeightFile() => AssertUserError(RunOnPixels(), _model, "model.safetensors");

    [Test]
    public void MissingKey()
    {
        WriteWeights((n, t) => n == "norm.bias" ? null : t);
        AssertUserError(RunOnPixels(), "model.safetensors", "missing keys", "norm.bias [48]");
    }

    [Test]
    public void UnexpectedKey()
    {
        using (var head = zeros(2, 48))
            WriteWeights((_, t) => t, ("head.weight", head));
        AssertUserError(RunOnPixels(), "model.safetensors", "unexpected keys", "head.weight [2, 48]");
    }

    [Test]
    public void WrongShapeListsBothShapes()
    {
        WriteWeights((n, t) => n == "blocks.1.mlp.fc1.weight" ? t.narrow(0, 0, 250).contiguous() : t);
        AssertUserError(RunOnPixels(), "model.safetensors", "blocks.1.mlp.fc1.weight", "checkpoint [250, 48]", "model [256, 48]");
    }

    // Hand-made safetensors files whose header lies about the data.
    private static IEnumerable<TestCaseData> LyingHeaders()
    {
        TestCaseData Case(string name, byte[] file, string expected) => new TestCaseData(file, expected).SetName($"CorruptWeights_{name}");
        yield return Case("HeaderLengthBeyondFile", File8(1000, "{}", 0), "runs past the end");
        yield return Case("OffsetsPastEnd", File8(null, """{"norm.bias":{"dtype":"F32","shape":[48],"data_offsets":[0,192]}}""", 100), "run past the end of the data");
        yield return Case("OverlappingOffsets", File8(null, """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12), "overlap");
        yield return Case("SizeNotShapeTimesDtype", File8(null, """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8), "needs 12 bytes");
        yield return Case("BadJson", File8(null, """{"a":{"dtype":"F32",""", 8), "not valid JSON");
        yield return Case("BadDtype", File8(null, """{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}""", 8), "unsupported dtype 'F33'");
        yield return Case("Truncated", [1, 2, 3], "only 3 bytes");
    }

    /// <summary>8-byte length (the real one unless overridden), the header, then <paramref name="dataBytes"/> zero bytes.</summary>
    private static byte[] File8(ulong? claimedLength, string header, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        return [.. BitConverter.GetBytes(claimedLength ?? (ulong)h.Length), .. h, .. new byte[dataBytes]];
    }

    [TestCaseSource(nameof(LyingHeaders))]
    public void CorruptWeights(byte[] file, string expected)
    {
        File.WriteAllBytes(Path.Combine(_model, "model.safetensors"), file);
        AssertUserError(RunOnPixels(), Path.Combine(_model, "model.safetensors"), expected);
    }

    [TestCase(new long[] { 1, 3, 256, 256 }, ScalarType.Float32, "[1, 3, 256, 256]")]
    [TestCase(new long[] { 1, 3, 224, 224 }, ScalarType.Float64, "F64")]
    [TestCase(new long[] { 3, 224, 224 }, ScalarType.Float32, "[3, 224, 224]")]
    public void PixelsOfTheWrongShapeOrDtype(long[] shape, ScalarType dtype, string expected)
    {
        CopyTinyWeights();
        var pixels = Path.Combine(_dir, "pixels.safetensors");
        using (var t = zeros(shape, dtype))
            SafeTensorsWriter.Write(pixels, new Dictionary<string, Tensor> { ["pixel_values"] = t });
        AssertUserError(RunOnPixels(pixels), pixels, "pixel_values", expected);
        Assert.That(File.Exists(Out), Is.False);
    }

    [Test]
    public void PixelFileWithoutPixelValues()
    {
        CopyTinyWeights();
        var pixels = Path.Combine(_dir, "pixels.safetensors");
        using (var t = zeros(1, 3, 224, 224))
            SafeTensorsWriter.Write(pixels, new Dictionary<string, Tensor> { ["images"] = t });
        AssertUserError(RunOnPixels(pixels), pixels, "no tensor 'pixel_values'", "images");
    }

    [Test]
    public void CorruptImage()
    {
        CopyTinyWeights();
        var bad = Path.Combine(_dir, "00001x_00002y.png");
        File.WriteAllBytes(bad, Encoding.ASCII.GetBytes("\x89PNG but not really an image"));
        var run = CliInvocation.Run("embed-tiles", "--model", _model, "--out", Out, FixturePaths.Get("preprocess", "01581x_25327y.png"), bad);
        AssertUserError(run, bad);
        Assert.That(File.Exists(Out), Is.False);
    }

    [Test]
    public void MissingInputPath()
    {
        CopyTinyWeights();
        var missing = Path.Combine(_dir, "nope");
        AssertUserError(CliInvocation.Run("embed-tiles", "--model", _model, "--out", Out, missing), missing, "no such file or folder");
    }

    [Test]
    public void NeitherImagesNorPixels()
    {
        CopyTinyWeights();
        AssertUserError(CliInvocation.Run("embed-tiles", "--model", _model, "--out", Out), "--pixels");
    }

    [Test]
    public void Float16OnCpu()
    {
        CopyTinyWeights();
        AssertUserError(CliInvocation.Run("embed-tiles", "--model", _model, "--out", Out, "--pixels",
            FixturePaths.Get("tile_encoder_tiny", "input.safetensors"), "--dtype", "float16"), "float16", "CPU");
    }

    /// <summary>
    /// A pixel file just past 2 GiB (3,567 tiles of 224 px, sparse on disk, all zeros) is read tile by tile past 2 GiB: it
    /// used to stop with "tensor 'pixel_values' is 2 GiB or larger; read it with Load or CopyInto", a library's message.
    /// </summary>
    [Test]
    public void PixelFilesOf2GiBOrMoreAreReadBatchByBatch()
    {
        const long PerTile = 3 * 224 * 224 * sizeof(float);
        long tiles = (1L << 31) / PerTile + 2;
        long bytes = tiles * PerTile;
        var header = Encoding.UTF8.GetBytes($"{{\"pixel_values\":{{\"dtype\":\"F32\",\"shape\":[{tiles},3,224,224],\"data_offsets\":[0,{bytes}]}}}}");
        var path = Path.Combine(_dir, "pixels.safetensors");
        using (var fs = File.Create(path))
        {
            fs.Write(BitConverter.GetBytes((ulong)header.Length));
            fs.Write(header);
            fs.SetLength(fs.Position + bytes);
        }
        using var inputs = GigaPath.Pipeline.PixelFileInputs.Open(path, GigaPath.Models.Tile.TileEncoderConfig.ProvGigaPath);
        Assert.That(inputs.Count, Is.EqualTo(tiles));
        var last = inputs.Read(inputs.Count - 1, GigaPath.Imaging.TilePreprocessor.Default);
        Assert.That(last, Has.Length.EqualTo(3 * 224 * 224));
        Assert.That(last.All(v => v == 0), Is.True);
    }
}
