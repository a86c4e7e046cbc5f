using GigaPath.Models.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Training;

/// <summary>A head's prediction for one slide: class probabilities and, for attention pooling, per-tile attention.</summary>
internal sealed record SlidePrediction(string SlideId, double[] Probabilities, float[]? Attention, float[]? AttentionScores);

/// <summary>Inference with a trained head: evaluation mode, no gradients, all tiles in stored order.</summary>
internal static class HeadEvaluator
{
    public static SlidePrediction Predict(SlideHead head, SlideBag bag, Device device, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        head.eval();
        var input = SlideInputs.ToTensors(bag, head.Config, device, dtype);
        var output = head.Forward(input);
        var probs = nn.functional.softmax(output.Logits.to(ScalarType.Float32), 1).cpu();
        var p = probs.data<float>().Select(v => (double)v).ToArray();
        return new SlidePrediction(bag.SlideId, p, ToArray(output.Attention), ToArray(output.AttentionScores));
    }

    private static float[]? ToArray(Tensor? t) => t?.to(ScalarType.Float32).cpu().data<float>().ToArray();
}
