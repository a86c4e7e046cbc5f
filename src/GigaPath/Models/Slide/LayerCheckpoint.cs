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
/// <para>
/// A layer whose output feeds a classification head also returns the head's input row (<see cref="StateSummary"/>) as
/// a second output. Taken from the output by autograd (a select or a mean), that row's gradient would be an L·D
/// tensor made when the backward starts - before any layer's backward, for every such layer at once (seven of them,
/// 1.1 GB at 50k tiles, for the published feat_layer 5-11); here it arrives as one row and is added to the output's
/// gradient chunk by chunk.
/// </para>
/// </summary>
internal sealed class LayerCheckpoint : autograd.MultiTensorFunction<LayerCheckpoint>
{
    public override string Name => "LongNetLayerCheckpoint";

    /// <summary>
    /// h: [B, L, D] float32, requiring grad. Returns the layer's output (a new tensor) and, unless
    /// <paramref name="summary"/> is <see cref="StateSummary.None"/>, that output's summary row [B, D]. The first run also
    /// keeps the attention kernel's block results of the branches in <paramref name="keptBranches"/> (all of them:
    /// ~2·L·D floats), so the re-run computes only the other branches' attention: with every branch kept the backward
    /// costs the layer's linear layers once more, not its attention. <paramref name="rowsPerChunk"/>: tokens per FFN
    /// chunk (the weight gradients are then sums of per-chunk products: the same terms, summed in another order;
    /// <see cref="LongNetViT.CheckpointFfnRows"/> decides it). <paramref name="arena"/>: where the output and kept
    /// results go (null: tensors of their own).
    /// </summary>
    public static (Tensor Output, Tensor? Summary) Apply(LongNetEncoderLayer layer, Tensor h, AttentionBlocking blocking, int index,
        IReadOnlySet<int> keptBranches, long rowsPerChunk, ActivationArena? arena, StateSummary summary = StateSummary.None)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rowsPerChunk, 1);
        var call = new Call(layer, blocking, index, Generator.Default.get_state().DetachFromDisposeScope(),
            keptBranches.Count > 0 ? new DilatedAttentionKernel.Saved(arena, keptBranches.Contains) : null, rowsPerChunk, arena, summary);
        var outputs = apply(h, call);
        if (call.Context is { } ctx) AutogradOutputCache.Release(ctx);
        return (outputs[0], summary == StateSummary.None ? null : outputs[1]);
    }

    public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
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
        if (call.Summary == StateSummary.None) return [result];
        // A tensor of its own (the cls row would be a view of the output, which autograd does not allow between outputs).
        return [result, LongNetViT.Summarize(result, call.Summary).clone().MoveToOuterDisposeScope()];
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> gradOutputs)
    {
        GradientHandles.ReleasePrevious();
        var call = (Call)ctx.get_data("call");
        // Without gradient materialisation (AutogradOutputCache) an output that got no gradient arrives undefined.
        var gradOutput = gradOutputs[0].IsInvalid ? null : gradOutputs[0];
        var gradSummary = gradOutputs.Count > 1 && !gradOutputs[1].IsInvalid ? gradOutputs[1] : null;
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
            long length = rowsInput.shape[1];
            var gradAttended = empty_like(rowsInput);
            foreach (var (r0, n) in call.Chunks(length))
            {
                using var chunk = NewDisposeScope();
                var rows = rowsInput.narrow(1, r0, n).detach().requires_grad_(true);
                var grad = OutputGradient(gradOutput, gradSummary, call.Summary, rows, r0, length);
                call.Layer.FeedForward(rows, noise?.narrow(1, r0, n)).backward([grad]);
                gradAttended.narrow(1, r0, n).copy_(rows.grad!);
            }
            noise?.Dispose();
            attended.backward([gradAttended]);
            gradInput = x.grad!.MoveToOuterDisposeScope();
        }
        foreach (var g in gradOutputs) if (!g.IsInvalid) g.Dispose();
        call.RngState.Dispose();
        GradientHandles.ReleasePrevious();
        return [GradientHandles.Keep(gradInput), null!];
    }

    /// <summary>
    /// The gradient of the output rows <paramref name="r0"/>..+n (shaped like <paramref name="rows"/>): the output's own
    /// gradient (zero when it got none) plus what the summary row's gradient sends to those rows - the cls row takes it
    /// whole, every tile row a 1/(L-1) share of it for the tile mean (what select's and mean's backwards would make).
    /// </summary>
    private static Tensor OutputGradient(Tensor? gradOutput, Tensor? gradSummary, StateSummary summary, Tensor rows, long r0, long length)
    {
        long n = rows.shape[1];
        var grad = gradOutput?.narrow(1, r0, n);
        if (gradSummary is null || summary == StateSummary.None) return grad ?? zeros_like(rows);
        if (summary == StateSummary.Cls)
        {
            if (r0 > 0) return grad ?? zeros_like(rows);
            var withCls = grad?.clone() ?? zeros_like(rows);
            withCls.select(1, 0).add_(gradSummary);
            return withCls;
        }
        var share = gradSummary.div(length - 1).unsqueeze(1);
        var result = grad is null ? share.expand(rows.shape).clone() : grad.add(share);
        if (r0 == 0) result.select(1, 0).copy_(gradOutput is null ? zeros_like(gradSummary) : gradOutput.select(1, 0));
        return result;
    }

    /// <summary>The non-tensor arguments; the generator state is a CPU byte tensor owned here.</summary>
    private sealed record Call(LongNetEncoderLayer Layer, AttentionBlocking Blocking, int Index, Tensor RngState,
        DilatedAttentionKernel.Saved? Attention, long RowsPerChunk, ActivationArena? Arena, StateSummary Summary)
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
