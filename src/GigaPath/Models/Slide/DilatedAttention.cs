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

    /// <summary>x: [B, L, D] float32 (already self_attn_layer_norm-ed). Returns [B, L, D] float32.</summary>
    public Tensor Forward(Tensor x, AttentionBlocking blocking, ActivationSink? sink, int layer)
    {
        using var scope = torch.NewDisposeScope();
        long b = x.shape[0], l = x.shape[1];
        long h = _config.NumHeads, hd = _config.HeadDim;
        var q = Projection.Apply(q_proj, x, keepComputeDtype: true).view(b, l, h, hd);
        var k = Projection.Apply(k_proj, x, keepComputeDtype: true).view(b, l, h, hd);
        var v = Projection.Apply(v_proj, x, keepComputeDtype: true).view(b, l, h, hd);
        var attn = DilatedAttentionKernel.Forward(q, k, v, _config.SegmentLength, _config.DilatedRatio, blocking)
            .reshape(b, l, _config.EmbedDim);
        q.Dispose(); k.Dispose(); v.Dispose();
        sink?.Invoke($"dilated_attn_{layer}", attn);
        var normed = inner_attn_ln.forward(attn);
        attn.Dispose();
        return Projection.Apply(out_proj, normed).MoveToOuterDisposeScope();
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
        var y = linear.forward(x.dtype == dtype ? x : x.to_type(dtype));
        return keepComputeDtype || y.dtype == ScalarType.Float32 ? y : y.to_type(ScalarType.Float32);
    }
}
