using GigaPath.Models.Heads;
using GigaPath.Models.Slide;
using GigaPath.Runtime;
using static TorchSharp.torch;

namespace GigaPath.Training;

/// <summary>
/// The forward and backward pass of one slide, for every caller that trains (the trainer, the gradient check, the
/// benchmarks): cross-entropy against the slide's label, scaled, back-propagated into the head's gradients. The whole
/// pass runs with <see cref="NativeAllocator.MapLargeBlocks"/>, so the memory a step needs is the same whichever way
/// the process was started, and accumulates into the head's <see cref="GradientBuffer"/>.
/// </summary>
internal static class TrainingStep
{
    /// <summary>
    /// Runs the step on <paramref name="head"/> (its mode as the caller set it) and returns the float32 logits [1, C] and
    /// the scaled loss (a scalar), detached, in the caller's dispose scope. <paramref name="lossScale"/>: a scalar
    /// tensor on the head's device (class weight / accumulation), or null for 1.
    /// </summary>
    public static (Tensor Logits, Tensor Loss) Backward(SlideHead head, SlideTensors input, long label, Tensor? lossScale)
    {
        using var largeBlocks = NativeAllocator.MapLargeBlocks();
        (head.Gradients ??= GradientBuffer.For(head)).Attach();
        using var scope = NewDisposeScope();
        var logits = head.Forward(input).Logits.to(ScalarType.Float32);
        var loss = nn.functional.cross_entropy(logits, tensor(new[] { label }, device: logits.device));
        if (lossScale is not null) loss = loss * lossScale;
        loss.backward();
        // The last custom autograd function's gradient handles (see GradientHandles) are not needed past the backward.
        GradientHandles.ReleasePrevious();
        return (logits.detach().MoveToOuterDisposeScope(), loss.detach().MoveToOuterDisposeScope());
    }
}
