using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>
/// Dilated attention as a custom autograd function: the forward is the blocked kernel (it keeps each block's output and
/// lse, ~2·L·D values, taking those a checkpointed layer's first run kept from it), the backward recomputes scores block by block from q, k, v and the saved lse
/// (<see cref="DilatedAttentionKernel.Backward"/>), so no score matrix is stored for autograd. Branch weights are
/// constants in the backward, as in the reference.
/// </summary>
internal sealed class DilatedAttentionFunction : autograd.MultiTensorFunction<DilatedAttentionFunction>
{
    public override string Name => "DilatedAttention";

    /// <summary>Returns the combined attention [B, L, H, d] (float32, float64 for float64 input).</summary>
    /// <param name="q">Queries [B, L, H, d].</param>
    /// <param name="k">Keys [B, L, H, d].</param>
    /// <param name="v">Values [B, L, H, d].</param>
    /// <param name="segmentLengths">Each branch's segment length.</param>
    /// <param name="ratios">Each branch's dilation ratio.</param>
    /// <param name="blocking">Block sizes of the kernel (memory/speed only).</param>
    /// <param name="replay">
    /// Block results kept by an earlier run on the same q, k, v (a checkpointed layer's first pass, all branches or
    /// some): those blocks are not computed again, and the output is the first run's bit for bit. Owned by the function
    /// from here on.
    /// </param>
    public static Tensor Apply(Tensor q, Tensor k, Tensor v, IReadOnlyList<int> segmentLengths, IReadOnlyList<int> ratios, AttentionBlocking blocking,
        DilatedAttentionKernel.Saved? replay = null)
    {
        var geometry = new Geometry(segmentLengths, ratios, blocking, replay);
        var output = apply(q, k, v, geometry)[0];
        if (geometry.Context is { } ctx) AutogradOutputCache.Release(ctx);
        return output;
    }

    public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (q, k, v) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2]);
        var geometry = (Geometry)vars[3];
        geometry.Context = ctx;
        // A replay supplies the blocks a checkpointed layer's first run kept; the rest are computed here, and the
        // backward needs every one of them.
        var saved = geometry.Replay ?? new DilatedAttentionKernel.Saved();
        saved.KeepEverything();
        var output = DilatedAttentionKernel.Forward(q, k, v, geometry.SegmentLengths, geometry.Ratios, geometry.Blocking, saved);
        ctx.save_for_backward([q, k, v]);
        // Tensors made here are not inputs or outputs: they are held outside autograd and freed by the backward.
        ctx.save_data("saved", saved);
        ctx.save_data("geometry", geometry);
        return [output];
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> gradOutputs)
    {
        GradientHandles.ReleasePrevious();
        using var saved = (DilatedAttentionKernel.Saved)ctx.get_data("saved");
        using var scope = NewDisposeScope();
        var tensors = ctx.get_saved_variables();
        var (q, k, v) = (tensors[0], tensors[1], tensors[2]);
        var geometry = (Geometry)ctx.get_data("geometry");
        // Undefined when the output got no gradient (materialisation is off, see AutogradOutputCache).
        var dOut = gradOutputs[0].IsInvalid ? zeros_like(q, dtype: saved.Max!.dtype) : gradOutputs[0];
        var (dq, dk, dv) = DilatedAttentionKernel.Backward(q, k, v, dOut, saved, geometry.SegmentLengths, geometry.Ratios, geometry.Blocking);
        foreach (var g in gradOutputs) if (!g.IsInvalid) g.Dispose();
        return [GradientHandles.Keep(dq), GradientHandles.Keep(dk), GradientHandles.Keep(dv), null!];
    }

    /// <summary>The non-tensor arguments.</summary>
    private sealed record Geometry(IReadOnlyList<int> SegmentLengths, IReadOnlyList<int> Ratios, AttentionBlocking Blocking,
        DilatedAttentionKernel.Saved? Replay)
    {
        /// <summary>The autograd context of the call, set by the forward (its output cache is released after apply).</summary>
        public autograd.AutogradContext? Context { get; set; }
    }
}

/// <summary>
/// Gradients returned from a custom function's backward: libtorch copies them when the callback returns, but the
/// managed handles still pin the memory until disposed. Each backward frees the handles of the previous one on its
/// thread (a CPU backward runs its callbacks on the calling thread), so at most one function's gradients linger;
/// <see cref="ReleasePrevious"/> after a backward pass frees those too.
/// </summary>
internal static class GradientHandles
{
    [ThreadStatic] private static List<Tensor>? _pending;

    public static Tensor Keep(Tensor t)
    {
        t.DetachFromDisposeScope();
        (_pending ??= []).Add(t);
        return t;
    }

    public static void ReleasePrevious()
    {
        if (_pending is null) return;
        foreach (var t in _pending) t.Dispose();
        _pending.Clear();
    }
}
