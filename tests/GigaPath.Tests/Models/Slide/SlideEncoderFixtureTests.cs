using GigaPath.Models.Slide;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Slide;

/// <summary>Parity with the reference's golden outputs (docs/slide-encoder.md §9), from both weight formats.</summary>
public class SlideEncoderFixtureTests
{
    private static readonly string[] WeightFiles = ["model.safetensors", "model.pth"];

    [TestCase("slide_encoder_tiny", "model.safetensors")]
    [TestCase("slide_encoder_tiny", "model.pth")]
    [TestCase("slide_encoder_tiny_short", "model.safetensors")]
    [TestCase("slide_encoder_tiny_short", "model.pth")]
    [TestCase("slide_encoder_tiny_misaligned", "model.safetensors")]
    [TestCase("slide_encoder_tiny_misaligned", "model.pth")]
    public void ReproducesEveryExpectedTensor(string fixture, string weights)
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get(fixture, weights));
        using var input = SafeTensorsFile.Open(FixturePaths.Get(fixture, "input.safetensors"));
        using var expected = SafeTensorsFile.Open(FixturePaths.Get(fixture, "expected.safetensors"));
        using var scope = NewDisposeScope();
        var captured = new Dictionary<string, Tensor>();
        using var result = encoder.Embed(input.Load("tile_embeddings"), input.Load("coords"), allLayers: true,
            (name, value) => captured[name] = value.detach().cpu().clone().DetachFromDisposeScope());

        var actual = new Dictionary<string, Tensor>(captured)
        {
            ["embed_default"] = result.ClsEmbedding,
            ["embed_global_pool"] = result.MeanPooledEmbedding,
            ["last_hidden_state"] = result.LastHiddenState,
        };
        for (int i = 0; i < result.ClsLayerEmbeddings!.Count; i++)
        {
            actual[$"layer_{i}"] = result.ClsLayerEmbeddings[i];
            actual[$"layer_pool_{i}"] = result.MeanPooledLayerEmbeddings![i];
        }

        var report = Compare(expected, actual, expected.Names);
        TestContext.Out.WriteLine($"parity: {fixture} ({weights}), {report.Count} tensors: max |diff| {report.Values.Max():E2}");
        foreach (var (name, diff) in report.OrderByDescending(kv => kv.Value).Take(5))
            TestContext.Out.WriteLine($"  {name}: {diff:E2}");
        Assert.That(result.ContextualTileEmbeddings.shape, Is.EqualTo(new[] { input.GetInfo("coords").Shape[1], encoder.Config.EmbedDim }));
        Assert.That(result.Warnings, Is.Empty);
    }

    [TestCase("model.safetensors")]
    [TestCase("model.pth")]
    public void ReproducesLongFixture(string weights)
    {
        const string fixture = "slide_encoder_long";
        using var encoder = SlideEncoder.Load(FixturePaths.Get(fixture, weights));
        using var input = SafeTensorsFile.Open(FixturePaths.Get(fixture, "input.safetensors"));
        using var expected = SafeTensorsFile.Open(FixturePaths.Get(fixture, "expected.safetensors"));
        using var scope = NewDisposeScope();
        using var result = encoder.Embed(input.Load("tile_embeddings"), input.Load("coords"), allLayers: true);

        long length = result.LastHiddenState.shape[1];
        var actual = new Dictionary<string, Tensor>
        {
            ["embed_default"] = result.ClsEmbedding,
            ["embed_global_pool"] = result.MeanPooledEmbedding,
            ["last_hidden_state_head"] = result.LastHiddenState.narrow(1, 0, 65),
            ["last_hidden_state_tail"] = result.LastHiddenState.narrow(1, length - 64, 64),
        };
        for (int i = 0; i < result.ClsLayerEmbeddings!.Count; i++)
        {
            actual[$"layer_{i}"] = result.ClsLayerEmbeddings[i];
            actual[$"layer_pool_{i}"] = result.MeanPooledLayerEmbeddings![i];
        }
        var report = Compare(expected, actual, expected.Names);
        TestContext.Out.WriteLine($"parity: {fixture} ({weights}), N = {length - 1}, {report.Count} tensors: max |diff| {report.Values.Max():E2}");
        foreach (var (name, diff) in report.OrderByDescending(kv => kv.Value))
            TestContext.Out.WriteLine($"  {name}: {diff:E2}");
    }

    [Test]
    public void DefaultOutputsWithoutAllLayersMatchToo()
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny"));
        using var input = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));
        using var expected = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "expected.safetensors"));
        using var scope = NewDisposeScope();
        // [N, D] / [N, 2] inputs (no batch axis) and integer coords give the same result.
        using var result = encoder.Embed(input.Load("tile_embeddings")[0], input.Load("coords")[0].to_type(ScalarType.Int64));
        Assert.That(result.ClsLayerEmbeddings, Is.Null);
        Assert.That(result.MeanPooledLayerEmbeddings, Is.Null);
        var report = Compare(expected, new Dictionary<string, Tensor>
        {
            ["embed_default"] = result.ClsEmbedding,
            ["embed_global_pool"] = result.MeanPooledEmbedding,
            ["last_hidden_state"] = result.LastHiddenState,
        }, ["embed_default", "embed_global_pool", "last_hidden_state"]);
        TestContext.Out.WriteLine($"parity: slide_encoder_tiny (no all-layers, [N, D] input): max |diff| {report.Values.Max():E2}");
        Assert.That(result.ContextualTileEmbeddings.equal(result.LastHiddenState[0].narrow(0, 1, 150)).all().item<bool>(), Is.True);
    }

    /// <summary>Max |expected - actual| per name; fails on a missing tensor, a shape mismatch or a diff above <see cref="Parity.Atol"/>.</summary>
    internal static Dictionary<string, double> Compare(SafeTensorsFile expected, IReadOnlyDictionary<string, Tensor> actual, IEnumerable<string> names)
    {
        var report = new Dictionary<string, double>();
        using var scope = NewDisposeScope();
        foreach (var name in names)
        {
            Assert.That(actual.ContainsKey(name), Is.True, $"no output for expected tensor '{name}'");
            var e = expected.Load(name);
            var a = actual[name];
            Assert.That(a.shape, Is.EqualTo(e.shape), name);
            report[name] = (a.to_type(ScalarType.Float64) - e.to_type(ScalarType.Float64)).abs().max().item<double>();
        }
        var failing = report.Where(kv => !(kv.Value <= Parity.Atol)).Select(kv => $"{kv.Key}: {kv.Value:E2}").ToList();
        Assert.That(failing, Is.Empty, $"tensors off by more than {Parity.Atol:E0}");
        return report;
    }
}
