using GigaPath.Models.Heads;
using GigaPath.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Training;

/// <summary>A head's prediction for one slide: class probabilities and, for attention pooling, per-tile attention.</summary>
public sealed class SlidePrediction
{
    internal SlidePrediction(string slideId, double[] probabilities, float[]? attention, float[]? attentionScores)
    {
        SlideId = slideId;
        ProbabilityValues = probabilities;
        AttentionValues = attention;
        AttentionScoreValues = attentionScores;
    }

    internal double[] ProbabilityValues { get; }

    internal float[]? AttentionValues { get; }

    internal float[]? AttentionScoreValues { get; }

    /// <summary>The slide's id (its feature file's name without the extension).</summary>
    public string SlideId { get; }

    /// <summary>One probability per class (softmax of the head's logits), in the head's class order.</summary>
    public IReadOnlyList<double> Probabilities => ProbabilityValues;

    /// <summary>The class with the highest probability (the first on ties); null until a <see cref="Predictor"/> run names it.</summary>
    public string? PredictedClass { get; internal set; }

    /// <summary>For attention heads: each tile's softmax attention, in the file's tile order; otherwise null.</summary>
    public IReadOnlyList<float>? Attention => AttentionValues;

    /// <summary>For attention heads: each tile's raw attention score before the softmax; otherwise null.</summary>
    public IReadOnlyList<float>? AttentionScores => AttentionScoreValues;

    /// <summary>The slide's attention file, when one was written.</summary>
    public string? AttentionPath { get; internal set; }
}

/// <summary>Inference with a trained head: evaluation mode, no gradients, all tiles in stored order.</summary>
internal static class HeadEvaluator
{
    public static SlidePrediction Predict(SlideHead head, SlideBag bag, Device device, ScalarType dtype)
    {
        // Between slides, and after training, hand the heap's free memory back (see SequenceHeadTrainer.Train).
        NativeAllocator.ReleaseFreeMemory();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        head.eval();
        var input = SlideInputs.ToTensors(bag, head.Config, device, dtype);
        var output = head.Forward(input);
        CheckOutput(output.Logits, bag);
        var probs = nn.functional.softmax(output.Logits.to(ScalarType.Float32), 1).cpu();
        var p = probs.data<float>().Select(v => (double)v).ToArray();
        return new SlidePrediction(bag.SlideId, p, ToArray(output.Attention), ToArray(output.AttentionScores));
    }

    /// <summary>Finite features in (checked when read), NaN or infinity out: the head's weights are broken.</summary>
    private static void CheckOutput(Tensor logits, SlideBag bag)
    {
        if (FiniteValues.NonFiniteRows(logits) is null) return;
        throw new GigaPathException(
            $"slide '{bag.SlideId}' ({bag.Path}): the head's output (logits) holds NaN or infinity although the features are finite: " +
            "the head's weights hold NaN or infinity (retrain it, or check the checkpoint file)");
    }

    private static float[]? ToArray(Tensor? t) => t?.to(ScalarType.Float32).cpu().data<float>().ToArray();
}
