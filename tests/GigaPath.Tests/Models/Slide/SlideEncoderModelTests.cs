using System.Text.Json;
using GigaPath.Models.Slide;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Slide;

public class SlideEncoderModelTests
{
    [Test]
    public void PublishedModelHasExactlyTheCheckpointKeysAndParameterCount()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(FixturePaths.Get("slide_encoder_full_keys.json")));
        var expected = doc.RootElement.GetProperty("keys").EnumerateArray()
            .ToDictionary(k => k.GetProperty("name").GetString()!, k => k.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray());
        using var model = new LongNetViT(SlideEncoderConfig.ProvGigaPath);
        var actual = model.state_dict();
        Assert.That(actual.Keys.Order(StringComparer.Ordinal), Is.EqualTo(expected.Keys.Order(StringComparer.Ordinal)));
        foreach (var (name, shape) in expected)
            Assert.That(actual[name].shape, Is.EqualTo(shape), name);
        long parameters = model.parameters().Sum(p => p.numel());
        Assert.That(parameters, Is.EqualTo(86_330_880));
        Assert.That(parameters, Is.EqualTo(doc.RootElement.GetProperty("total_parameters").GetInt64()));
        Assert.That(actual, Has.Count.EqualTo(247));
    }

    [Test]
    public void SaveThenLoadGivesTheSameOutputs()
    {
        var dir = FixturePaths.TempDir();
        try
        {
            var config = SlideEncoderConfig.Load(FixturePaths.Get("slide_encoder_tiny", "config.json"));
            using var random = SlideEncoder.CreateRandom(config, seed: 3);
            using var again = SlideEncoder.CreateRandom(config, seed: 3);
            Assert.That(again.WeightsSha256, Is.EqualTo(random.WeightsSha256), "random init is deterministic per seed");
            random.Save(dir);
            Assert.That(Directory.GetFiles(dir).Select(Path.GetFileName).Order(), Is.EqualTo(new[] { "config.json", "model.safetensors" }));
            using var loaded = SlideEncoder.Load(dir);
            Assert.That(loaded.Config, Is.EqualTo(config));
            Assert.That(loaded.WeightsPath, Is.EqualTo(Path.Combine(dir, "model.safetensors")));
            Assert.That(loaded.WeightsSha256, Has.Length.EqualTo(64));

            using var scope = NewDisposeScope();
            var (x, coords) = RandomSlide(config.InputChannels, 40, 11);
            using var a = random.Embed(x, coords);
            using var b = loaded.Embed(x, coords);
            Assert.That(a.MeanPooledEmbedding.equal(b.MeanPooledEmbedding).all().item<bool>(), Is.True);
            Assert.That(a.LastHiddenState.equal(b.LastHiddenState).all().item<bool>(), Is.True);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void FolderWithoutConfigMeansThePublishedModel()
    {
        var dir = FixturePaths.TempDir();
        try
        {
            File.Copy(FixturePaths.Get("slide_encoder_tiny", "model.safetensors"), Path.Combine(dir, "model.safetensors"));
            var e = Assert.Throws<WeightFormatException>(() => SlideEncoder.Load(dir));
            Assert.That(e!.Message, Does.Contain("no config.json"));
            Assert.That(e.Message, Does.Contain("gigapath_slide_enc12l768d"));
            Assert.That(e.Message, Does.Contain("cls_token"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void UnexpectedCheckpointEntriesNeedTheOption()
    {
        var dir = FixturePaths.TempDir();
        try
        {
            using (var source = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "model.safetensors")))
            {
                using var scope = NewDisposeScope();
                var tensors = source.Names.Select(n => new KeyValuePair<string, Tensor>(n, source.Load(n))).ToList();
                tensors.Add(new("decoder_pred.weight", zeros(4, 4)));
                SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
            }
            File.Copy(FixturePaths.Get("slide_encoder_tiny", "config.json"), Path.Combine(dir, "config.json"));
            var e = Assert.Throws<WeightFormatException>(() => SlideEncoder.Load(dir));
            Assert.That(e!.Message, Does.Contain("decoder_pred.weight"));
            using var encoder = SlideEncoder.Load(dir, new SlideEncoderOptions { AllowUnexpectedKeys = true });
            Assert.That(encoder.ParameterCount, Is.GreaterThan(0));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void BFloat16StaysCloseToFloat32()
    {
        var path = FixturePaths.Get("slide_encoder_tiny");
        using var full = SlideEncoder.Load(path);
        using var half = SlideEncoder.Load(path, new SlideEncoderOptions { DType = ScalarType.BFloat16, AllowSlowDType = true /* tiny model: fast even when emulated */ });
        using var input = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));
        using var scope = NewDisposeScope();
        using var a = full.Embed(input.Load("tile_embeddings"), input.Load("coords"));
        using var b = half.Embed(input.Load("tile_embeddings"), input.Load("coords"));
        Assert.That(b.MeanPooledEmbedding.dtype, Is.EqualTo(ScalarType.Float32));
        var cosine = nn.functional.cosine_similarity(a.MeanPooledEmbedding, b.MeanPooledEmbedding).item<float>();
        TestContext.Out.WriteLine($"bfloat16 vs float32: cosine {cosine}, max |diff| {(a.MeanPooledEmbedding - b.MeanPooledEmbedding).abs().max().item<float>()}");
        Assert.That(cosine, Is.GreaterThan(0.999));
    }

    [Test]
    public void Float16IsRefusedOnCpu()
    {
        var e = Assert.Throws<GigaPathException>(() => SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny"),
            new SlideEncoderOptions { DType = ScalarType.Float16 }));
        Assert.That(e!.Message, Does.Contain("float16"));
    }

    [Test]
    public void DuplicateCellsAreReportedAsWarnings()
    {
        var config = SlideEncoderConfig.Load(FixturePaths.Get("slide_encoder_tiny", "config.json"));
        var seen = new List<string>();
        using var encoder = SlideEncoder.CreateRandom(config, 1, new SlideEncoderOptions { OnWarning = seen.Add });
        using var scope = NewDisposeScope();
        var (x, coords) = RandomSlide(config.InputChannels, 10, 2);
        coords[7] = coords[2].clone();
        using var result = encoder.Embed(x, coords);
        Assert.That(result.Warnings, Has.Count.EqualTo(1));
        Assert.That(result.Warnings[0], Does.Contain("tile 7 and tile 2"));
        Assert.That(seen, Is.EqualTo(result.Warnings));
    }

    private static IEnumerable<TestCaseData> BadInputs()
    {
        yield return new TestCaseData(new long[] { 5, 32 }, new long[] { 4, 2 }, "5 tiles but coords hold 4").SetName("CountMismatch");
        yield return new TestCaseData(new long[] { 5, 31 }, new long[] { 5, 2 }, "width 31").SetName("WrongWidth");
        yield return new TestCaseData(new long[] { 0, 32 }, new long[] { 0, 2 }, "empty slide").SetName("Empty");
        yield return new TestCaseData(new long[] { 2, 5, 32 }, new long[] { 5, 2 }, "one slide at a time").SetName("Batch2");
        yield return new TestCaseData(new long[] { 5, 32 }, new long[] { 5, 3 }, "coords: expected [N, 2]").SetName("CoordsWidth");
    }

    [TestCaseSource(nameof(BadInputs))]
    public void BadInputShapesAreNamed(long[] embeddingShape, long[] coordShape, string message)
    {
        var config = SlideEncoderConfig.Load(FixturePaths.Get("slide_encoder_tiny", "config.json"));
        using var encoder = SlideEncoder.CreateRandom(config, 1);
        using var scope = NewDisposeScope();
        var e = Assert.Throws<GigaPathException>(() => encoder.Embed(zeros(embeddingShape), zeros(coordShape)));
        Assert.That(e!.Message, Does.Contain(message));
    }

    [Test]
    public void NonFiniteEmbeddingsAreNamedByTile()
    {
        var config = SlideEncoderConfig.Load(FixturePaths.Get("slide_encoder_tiny", "config.json"));
        using var encoder = SlideEncoder.CreateRandom(config, 1);
        using var scope = NewDisposeScope();
        var (x, coords) = RandomSlide(config.InputChannels, 6, 4);
        x[4, 9] = tensor(float.NaN);
        var e = Assert.Throws<GigaPathException>(() => encoder.Embed(x, coords));
        Assert.That(e!.Message, Does.Contain("tile 4 holds NaN at feature 9"));
    }

    /// <summary>
    /// The dense-attention benchmark baseline must be the same model with dense attention: with one branch whose
    /// segment covers the whole slide at ratio 1, dilated attention is dense attention, so both must agree; with the
    /// real branches they must not (the baseline is not Prov-GigaPath).
    /// </summary>
    [Test]
    public void DenseBaselineIsTheSameModelWithDenseAttention()
    {
        var config = SlideEncoderConfig.Load(FixturePaths.Get("slide_encoder_tiny", "config.json"));
        var single = config with { SegmentLengths = [4096], DilationRatios = [1] };
        using var scope = NewDisposeScope();
        var (x, coords) = RandomSlide(config.InputChannels, 40, 7);
        Assert.That(DilatedVsDense(single, x, coords), Is.LessThan(1e-5), "one whole-slide segment at ratio 1 is dense attention");
        Assert.That(DilatedVsDense(config, x, coords), Is.GreaterThan(1e-3), "the published branches are not dense attention");
    }

    private static double DilatedVsDense(SlideEncoderConfig config, Tensor x, Tensor coords)
    {
        using var dilated = SlideEncoder.CreateRandom(config, 2);
        using var dense = SlideEncoder.CreateRandom(config, 2, new SlideEncoderOptions { Attention = SlideAttention.DenseBaseline });
        using var a = dilated.Embed(x, coords);
        using var b = dense.Embed(x, coords);
        return (a.LastHiddenState - b.LastHiddenState).abs().max().item<float>();
    }

    /// <summary>Random embeddings and distinct, row-major grid coordinates.</summary>
    internal static (Tensor X, Tensor Coords) RandomSlide(int width, int n, ulong seed)
    {
        var gen = new Generator(seed);
        var x = randn([n, width], generator: gen);
        var cells = arange(n, dtype: ScalarType.Int64);
        var coords = stack([(cells % 37) * 256 + 13, (cells / 37) * 256 + 5], 1).to_type(ScalarType.Float32);
        return (x, coords);
    }
}
