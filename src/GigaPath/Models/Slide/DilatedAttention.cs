using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>Receives named intermediate activations (hidden_i, attn_in_i, dilated_attn_i, attn_out_i) during a forward.</summary>
internal delegate void ActivationSink(string name, Tensor value);

#pragma warning disable IDE1006 // field names are the checkpoint's keys

/// <summary>
/// <c>encoder.layers.{i}.self_attn</c>: q/k/v projections, <see cref="DilatedAttentionKernel"/>, the sub-LN
/// <c>inner_attn_ln</c> and <c>out_proj</c>.
/// </summary>
internal sealed class DilatedAttention : nn.Module
{
    public readonly Linear k_proj;
    public readonly Linear v_proj;
    public readonly Linear q_proj;
    public readonly Linear out_proj;
    public readonly LayerNorm inner_attn_ln;

    private readonly SlideEncoderConfig _config;

    public DilatedAttention(SlideEncoderConfig config) : base("DilatedAttention")
    {
        _config = config;
        int d = config.EmbedDim;
        k_proj = nn.Linear(d, d);
        v_proj = nn.Linear(d, d);
        q_proj = nn.Linear(d, d);
        out_proj = nn.Linear(d, d);
        inner_attn_ln = nn.LayerNorm(d, config.EncoderLayerNormEps);
        RegisterComponents();
    }

    /// <summary>q, k, v as [B, L, H, d] in the projection dtype, from x: [B, L, D] (already self_attn_layer_norm-ed).</summary>
    public (Tensor Q, Tensor K, Tensor V) Project(Tensor x)
    {
        long b = x.shape[0], l = x.shape[1];
        long h = _config.HeadCount, hd = _config.HeadDim;
        Tensor Heads(Linear proj)
        {
            using var flat = Projection.Apply(proj, x, keepComputeDtype: true);
            return flat.view(b, l, h, hd);
        }
        return (Heads(q_proj), Heads(k_proj), Heads(v_proj));
    }

    /// <summary>
    /// Projects <paramref name="x"/> [B, n, D] (already self_attn_layer_norm-ed rows <paramref name="row0"/>..+n of the
    /// slide) into the workspace's q, k and v at those rows.
    /// </summary>
    public void ProjectInto(Tensor x, SlideWorkspace workspace, long row0)
    {
        long rows = x.shape[1];
        var (q, k, v) = Project(x);
        workspace.Q.narrow(1, row0, rows).copy_(q);
        workspace.K.narrow(1, row0, rows).copy_(k);
        workspace.V.narrow(1, row0, rows).copy_(v);
        q.Dispose();
        k.Dispose();
        v.Dispose();
    }

    /// <summary>
    /// The dilated attention [B, L, D] of the workspace's q, k, v, in the caller's dispose scope: a view of the
    /// workspace's accumulator (valid until its next use), or, for the dense baseline, a new tensor.
    /// </summary>
    public Tensor AttendInWorkspace(SlideWorkspace workspace, AttentionBlocking blocking, ActivationSink? sink, int layer)
    {
        var q = workspace.Q;
        var attn = Attend(q, workspace.K, workspace.V, blocking, workspace.Combination).reshape(q.shape[0], q.shape[1], _config.EmbedDim);
        sink?.Invoke($"dilated_attn_{layer}", attn);
        return attn;
    }

    /// <summary>out_proj(inner_attn_ln(<paramref name="attn"/>)) for some rows [B, n, D], in the caller's dispose scope.</summary>
    public Tensor Output(Tensor attn)
    {
        using var normed = inner_attn_ln.forward(attn);
        return Projection.Apply(out_proj, normed);
    }

    /// <summary>
    /// The branch-combined dilated attention [B, L, H, d] (float32), by need: the streamed kernel when no gradient is
    /// wanted; when autograd must see q, k or v, the same kernel wrapped as an autograd function whose backward is
    /// blocked as well (<see cref="DilatedAttentionFunction"/>).
    /// </summary>
    private Tensor Attend(Tensor q, Tensor k, Tensor v, AttentionBlocking blocking, DilatedAttentionKernel.Combination? combination = null)
    {
        var (record, replay) = (Recording, Replaying);
        (Recording, Replaying) = (null, null);
        if (blocking.DenseBaseline)
        {
            return nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
                .transpose(1, 2).to_type(ScalarType.Float32);
        }
        bool differentiable = torch.is_grad_enabled() && (q.requires_grad || k.requires_grad || v.requires_grad);
        return differentiable
            ? DilatedAttentionFunction.Apply(q, k, v, _config.SegmentLengths, _config.DilationRatios, blocking, replay)
            : DilatedAttentionKernel.Forward(q, k, v, _config.SegmentLengths, _config.DilationRatios, blocking, record, combination);
    }

    /// <summary>
    /// Set by <see cref="LayerCheckpoint"/> for the next call only: keep the kernel's per-block results of the first,
    /// gradient-free run here (the branches it asks for), so that the re-run in the backward (<see cref="Replaying"/>)
    /// takes them instead of recomputing those blocks' attention.
    /// </summary>
    internal DilatedAttentionKernel.Saved? Recording { get; set; }

    /// <summary>For the next call only: the results <see cref="Recording"/> kept (ownership passes to autograd).</summary>
    internal DilatedAttentionKernel.Saved? Replaying { get; set; }

    /// <summary>Dilated attention, sub-LN and output projection; takes ownership of q, k, v (freed as soon as they are used).</summary>
    public Tensor Forward(Tensor q, Tensor k, Tensor v, AttentionBlocking blocking, ActivationSink? sink, int layer)
    {
        using var scope = torch.NewDisposeScope();
        long b = q.shape[0], l = q.shape[1];
        var attn = Attend(q, k, v, blocking).reshape(b, l, _config.EmbedDim);
        // q, k, v (3 × L·D) are dead now: free them before the next L·D-sized tensors are made.
        q.Dispose();
        k.Dispose();
        v.Dispose();
        scope.DisposeEverythingBut(attn);
        sink?.Invoke($"dilated_attn_{layer}", attn);
        var output = Output(attn);
        attn.Dispose();
        return output.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Autocast-like mixed precision: Linear weights may be bfloat16/float16 while activations, LayerNorms and residuals
/// stay float32 (as under torch.autocast in the reference's GPU runs).
/// </summary>
internal static class Projection
{
    public static Tensor Apply(Linear linear, Tensor x, bool keepComputeDtype = false)
    {
        var dtype = linear.weight!.dtype;
        Tensor y;
        if (x.dtype == dtype)
        {
            y = linear.forward(x);
        }
        else
        {
            // Casts are disposed at once: for a whole slide each is an L×D (or N×in_chans) tensor.
            using var cast = x.to_type(dtype);
            y = linear.forward(cast);
        }
        if (keepComputeDtype || y.dtype == ScalarType.Float32) return y;
        var result = y.to_type(ScalarType.Float32);
        y.Dispose();
        return result;
    }
}
