using GigaPath.Models.Heads;
using GigaPath.Training;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Training;

/// <summary>
/// Training steps accumulate into one block of gradients (<see cref="GradientBuffer"/>): every parameter the head's
/// forward uses gets its gradient there and keeps it across steps (accumulation in place, values those of autograd's own
/// gradients), the unused ones get none, and a gradient a caller dropped is attached again from zero.
/// </summary>
public class GradientBufferTests
{
    [Test]
    public void StepsAccumulateInPlaceInOneBlock()
    {
        using var head = HeadGradients.LoadHead(FixturePaths.Get("slide_finetune_tiny"));
        var (features, coords, label) = HeadGradients.LoadInput(FixturePaths.Get("slide_finetune_tiny", "input.safetensors"));
        using var scope = NewDisposeScope();
        var input = new SlideTensors(features, coords, null);
        head.train();

        // Autograd's own gradients: one backward with no buffer attached.
        var loss = nn.functional.cross_entropy(head.Forward(input).Logits, tensor(new[] { label }));
        loss.backward();
        GigaPath.Models.Slide.GradientHandles.ReleasePrevious();
        var plain = head.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        head.zero_grad();
        foreach (var p in head.parameters()) p.grad = null;

        TrainingStep.Backward(head, input, label, null);
        var first = head.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => (Grad: p.parameter.grad!.clone(), Data: Address(p.parameter.grad!)));
        Assert.That(first.Keys, Is.EquivalentTo(plain.Keys), "the parameters that get gradients");
        Assert.That(first.Keys.Any(k => k.Contains("encoder.layer_norm", StringComparison.Ordinal)), Is.False, "the unused output norm gets none");
        foreach (var (name, g) in plain)
            Assert.That(first[name].Grad.equal(g).all().item<bool>(), name);
        // One block: the gradients' data lie end to end.
        var spans = head.TrainedParameters().Select(p => (Start: Address(p.grad!), Bytes: p.numel() * p.grad!.ElementSize)).ToList();
        for (int i = 1; i < spans.Count; i++)
            Assert.That(spans[i].Start, Is.EqualTo(spans[i - 1].Start + spans[i - 1].Bytes), "contiguous gradients");

        TrainingStep.Backward(head, input, label, null);
        foreach (var (name, p) in head.named_parameters().Where(p => p.parameter.grad is not null))
        {
            Assert.That(Address(p.grad!), Is.EqualTo(first[name].Data), $"{name}: accumulated in place");
            Assert.That((p.grad! - 2 * first[name].Grad).abs().max().item<float>(), Is.LessThanOrEqualTo(1e-6 * first[name].Grad.abs().max().item<float>() + 1e-9), name);
        }

        // A dropped gradient comes back from zero: one more step gives the single-step values again.
        foreach (var p in head.parameters()) p.grad = null;
        TrainingStep.Backward(head, input, label, null);
        foreach (var (name, g) in plain)
            Assert.That(head.named_parameters().Single(p => p.name == name).parameter.grad!.equal(g).all().item<bool>(), $"{name} after the gradients were dropped");
    }

    /// <summary>Where a float32 tensor's data starts (storage&lt;T&gt; of another element type would be a converted copy).</summary>
    private static long Address(Tensor t)
    {
        Assert.That(t.dtype, Is.EqualTo(ScalarType.Float32));
        using var storage = t.storage<float>();
        return (long)storage.data_ptr() + t.storage_offset() * t.ElementSize;
    }
}
