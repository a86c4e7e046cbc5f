using GigaPath.Models.Slide;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Slide;

/// <summary>The differentiable fine-tuning forward reproduces the reference fixtures in evaluation mode and back-propagates.</summary>
public class LongNetTrainingTests
{
    [TestCase("slide_encoder_tiny")]
    [TestCase("slide_encoder_tiny_short")]
    [TestCase("slide_encoder_tiny_misaligned")]
    [TestCase("slide_encoder_long")]
    public void EvaluationModeMatchesTheFixtures(string fixture)
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get(fixture, "model.safetensors"));
        using var input = SafeTensorsFile.Open(FixturePaths.Get(fixture, "input.safetensors"));
        using var expected = SafeTensorsFile.Open(FixturePaths.Get(fixture, "expected.safetensors"));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var states = LongNetTraining.HiddenStates(encoder.Model, input.Load("tile_embeddings")[0], input.Load("coords")[0], 0.1, training: false);
        var actual = new Dictionary<string, Tensor>();
        for (int i = 0; i < states.Count; i++)
        {
            actual[$"layer_{i}"] = LongNetTraining.Head(encoder.Model, states[i], globalPool: false);
            actual[$"layer_pool_{i}"] = LongNetTraining.Head(encoder.Model, states[i], globalPool: true);
            if (expected.Contains($"hidden_{i}")) actual[$"hidden_{i}"] = states[i];
        }
        var names = actual.Keys.ToList();
        var report = SlideEncoderFixtureTests.Compare(expected, actual, names);
        TestContext.Out.WriteLine($"parity: {fixture} (fine-tuning forward, eval mode), {report.Count} tensors: max |diff| {report.Values.Max():E2}");
    }

    [Test]
    public void GradientsReachEveryParameter()
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny", "model.safetensors"));
        using var input = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));
        using var scope = NewDisposeScope();
        var model = encoder.Model;
        foreach (var p in model.parameters()) p.requires_grad_(true);
        var states = LongNetTraining.HiddenStates(model, input.Load("tile_embeddings")[0], input.Load("coords")[0], 0.25, training: true);
        var loss = LongNetTraining.Head(model, states[^1], globalPool: true).pow(2).sum() + LongNetTraining.Head(model, states[1], false).sum();
        loss.backward();
        var missing = model.named_parameters().Where(p => p.parameter.grad is null || p.parameter.grad.abs().sum().item<float>() == 0).Select(p => p.name).ToList();
        // The all-layer outputs skip encoder.layer_norm (LN_enc), in the reference's classification head too.
        Assert.That(missing, Is.EquivalentTo(new[] { "encoder.layer_norm.weight", "encoder.layer_norm.bias" }));
    }

    [Test]
    public void DilatedAttentionGradientMatchesFiniteDifferences()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(3);
        var q = randn([1, 11, 4, 3], generator: gen, dtype: ScalarType.Float64).requires_grad_(true);
        var k = randn([1, 11, 4, 3], generator: gen, dtype: ScalarType.Float64);
        var v = randn([1, 11, 4, 3], generator: gen, dtype: ScalarType.Float64);
        var w = randn([1, 11, 4, 3], generator: gen, dtype: ScalarType.Float64);
        int[] segments = [4, 6, 11], ratios = [1, 4, 2];
        Tensor F(Tensor qq) => (LongNetTraining.DilatedAttention(qq.to_type(ScalarType.Float32), k, v, segments, ratios).to_type(ScalarType.Float64) * w).sum();
        F(q).backward();
        var analytic = q.grad!.clone();
        const double eps = 1e-2;
        using var _ = no_grad();
        double worst = 0;
        foreach (var idx in new long[][] { [0, 0, 0, 0], [0, 5, 2, 1], [0, 10, 3, 2], [0, 7, 1, 0] })
        {
            var plus = q.clone(); plus[idx[0], idx[1], idx[2], idx[3]] += eps;
            var minus = q.clone(); minus[idx[0], idx[1], idx[2], idx[3]] -= eps;
            double numeric = (F(plus).item<double>() - F(minus).item<double>()) / (2 * eps);
            worst = Math.Max(worst, Math.Abs(numeric - analytic[idx[0], idx[1], idx[2], idx[3]].item<double>()));
        }
        Assert.That(worst, Is.LessThan(2e-3));
    }
}
