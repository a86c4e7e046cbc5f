using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>
/// Activation checkpointing of one encoder layer (as torch.utils.checkpoint does): the forward runs the layer without
/// recording anything and keeps only its input; the backward re-runs it with autograd on - with the generator state
/// of the first run, so dropout draws the same masks - and back-propagates through it, which also accumulates the
/// layer's parameter gradients. A layer then costs autograd one L·D tensor instead of its ~30 L·D activations, for one
/// extra layer forward in the backward pass. The FFN half (row-wise) runs in row chunks in both passes, its backward
/// chunk by chunk, so the F-wide intermediates (fc1, GELU, sub-LN: the largest activations) never exist for all rows.
/// </summary>
internal sealed class LayerCheckpoint : autograd.SingleTensorFunction<LayerCheckpoint>
{
    public override string Name => "LongNetLayerCheckpoint";

    /// <summary>
    /// h: [B, L, D] float32, requiring grad. Returns the layer's output (a new tensor). The first run also keeps the
    /// attention kernel's block results of the branches in <paramref name="keptBranches"/> (all of them: ~2·L·D floats),
    /// so the re-run computes only the other branches' attention: with every branch kept the backward costs the
    /// layer's linear layers once more, not its attention. <paramref name="rowsPerChunk"/>: tokens per FFN chunk (the weight gradients are then sums of
    /// per-chunk products: the same terms, summed in another order; <see cref="LongNetViT.CheckpointFfnRows"/> decides
    /// it). <paramref name="arena"/>: where the output and kept results go (null: tensors of their own).
    /// </summary>
    public static Tensor Apply(LongNetEncoderLayer layer, Tensor h, AttentionBlocking blocking, int index, IReadOnlySet<int> keptBranches,
        long rowsPerChunk, ActivationArena? arena)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rowsPerChunk, 1);
        var call = new Call(layer, blocking, index, Generator.Default.get_state().DetachFromDisposeScope(),
            keptBranches.Count > 0 ? new DilatedAttentionKernel.Saved(arena, keptBranches.Contains) : null, rowsPerChunk, arena);
        var output = apply(h, call);
        if (call.Context is { } ctx) AutogradOutputCache.Release(ctx);
        return output;
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (h, call) = ((Tensor)vars[0], (Call)vars[1]);
        call.Context = ctx;
        ctx.save_for_backward([h]);
        ctx.save_data("call", call);
        call.Layer.self_attn.Recording = call.Attention;
        // The output (h's shape and dtype) outlives the step's forward: in the arena when there is one (see ActivationArena).
        var result = call.Arena?.Take(h.shape, h.dtype) ?? empty_like(h);
        using var scope = NewDisposeScope();
        var attended = call.Layer.Attend(h, call.Blocking, null, call.Index);
        var noise = call.Layer.FfnDropoutNoise(attended);
        foreach (var (r0, n) in call.Chunks(attended.shape[1]))
        {
            using var chunk = NewDisposeScope();
            result.narrow(1, r0, n).copy_(call.Layer.FeedForward(attended.narrow(1, r0, n), noise?.narrow(1, r0, n)));
        }
        return result;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        GradientHandles.ReleasePrevious();
        var call = (Call)ctx.get_data("call");
        // Without gradient materialisation (AutogradOutputCache) an output that got no gradient arrives undefined.
        if (gradOutput.IsInvalid) gradOutput = zeros_like(ctx.get_saved_variables()[0]).DetachFromDisposeScope();
        Tensor gradInput;
        using (var scope = NewDisposeScope())
        using (enable_grad())
        {
            var x = ctx.get_saved_variables()[0].detach().requires_grad_(true);
            var generator = Generator.Default;
            using var current = generator.get_state();
            generator.set_state(call.RngState);
            call.Layer.self_attn.Replaying = call.Attention;
            var attended = call.Layer.Attend(x, call.Blocking, null, call.Index);
            var noise = call.Layer.FfnDropoutNoise(attended);
            generator.set_state(current);
            // The FFN half, re-run and differentiated per row chunk from a detached copy of its input; its input's
            // gradient (residual path included) is gathered and then sent back through the attention half.
            var rowsInput = attended.detach();
            var gradAttended = empty_like(rowsInput);
            foreach (var (r0, n) in call.Chunks(rowsInput.shape[1]))
            {
                using var chunk = NewDisposeScope();
                var rows = rowsInput.narrow(1, r0, n).detach().requires_grad_(true);
                call.Layer.FeedForward(rows, noise?.narrow(1, r0, n)).backward([gradOutput.narrow(1, r0, n)]);
                gradAttended.narrow(1, r0, n).copy_(rows.grad!);
            }
            noise?.Dispose();
            attended.backward([gradAttended]);
            gradInput = x.grad!.MoveToOuterDisposeScope();
        }
        gradOutput.Dispose();
        call.RngState.Dispose();
        GradientHandles.ReleasePrevious();
        return [GradientHandles.Keep(gradInput), null!];
    }

    /// <summary>The non-tensor arguments; the generator state is a CPU byte tensor owned here.</summary>
    private sealed record Call(LongNetEncoderLayer Layer, AttentionBlocking Blocking, int Index, Tensor RngState,
        DilatedAttentionKernel.Saved? Attention, long RowsPerChunk, ActivationArena? Arena)
    {
        /// <summary>The autograd context of the call, set by the forward (its output cache is released after apply).</summary>
        public autograd.AutogradContext? Context { get; set; }

        /// <summary>(first row, rows) of each FFN chunk over <paramref name="length"/> tokens.</summary>
        public IEnumerable<(long Start, long Rows)> Chunks(long length)
        {
            for (long r0 = 0; r0 < length; r0 += RowsPerChunk) yield return (r0, Math.Min(RowsPerChunk, length - r0));
        }
    }
}
