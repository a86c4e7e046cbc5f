using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

#pragma warning disable IDE1006 // field names are the checkpoint's keys

/// <summary><c>encoder.layers.{i}.ffn</c>: fc1 → exact GELU (float32) → sub-LN <c>ffn_layernorm</c> → fc2.</summary>
internal sealed class FeedForwardNetwork : nn.Module
{
    public readonly Linear fc1;
    public readonly Linear fc2;
    public readonly LayerNorm ffn_layernorm;

    public FeedForwardNetwork(SlideEncoderConfig config) : base("FeedForwardNetwork")
    {
        fc1 = nn.Linear(config.EmbedDim, config.FfnDim);
        fc2 = nn.Linear(config.FfnDim, config.EmbedDim);
        ffn_layernorm = nn.LayerNorm(config.FfnDim, config.EncoderLayerNormEps);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var f = nn.functional.gelu(Projection.Apply(fc1, x));
        return Projection.Apply(fc2, ffn_layernorm.forward(f)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// <c>encoder.layers.{i}</c>: pre-LN layer with sub-LN, residual weight 1:
/// h += attn(LN_attn(h)); h += ffn(LN_ffn(h)).
/// </summary>
internal sealed class LongNetEncoderLayer : nn.Module
{
    /// <summary>Tokens per FFN chunk: the F-wide intermediate is the largest activation, so it is never built for all rows.</summary>
    private const long FfnRowsPerChunk = 4096;

    public readonly DilatedAttention self_attn;
    public readonly LayerNorm self_attn_layer_norm;
    public readonly FeedForwardNetwork ffn;
    public readonly LayerNorm final_layer_norm;

    public LongNetEncoderLayer(SlideEncoderConfig config) : base("LongNetEncoderLayer")
    {
        self_attn = new DilatedAttention(config);
        self_attn_layer_norm = nn.LayerNorm(config.EmbedDim, config.EncoderLayerNormEps);
        ffn = new FeedForwardNetwork(config);
        final_layer_norm = nn.LayerNorm(config.EmbedDim, config.EncoderLayerNormEps);
        RegisterComponents();
    }

    /// <summary>Updates <paramref name="h"/> [B, L, D] float32 in place.</summary>
    public void Forward(Tensor h, AttentionBlocking blocking, ActivationSink? sink, int layer)
    {
        using (var scope = torch.NewDisposeScope())
        {
            var a = self_attn_layer_norm.forward(h);
            sink?.Invoke($"attn_in_{layer}", a);
            var (q, k, v) = self_attn.Project(a);
            a.Dispose();
            var u = self_attn.Forward(q, k, v, blocking, sink, layer);
            sink?.Invoke($"attn_out_{layer}", u);
            h.add_(u);
        }
        long length = h.shape[1];
        for (long r0 = 0; r0 < length; r0 += FfnRowsPerChunk)
        {
            using var scope = torch.NewDisposeScope();
            var rows = h.narrow(1, r0, Math.Min(FfnRowsPerChunk, length - r0));
            rows.add_(ffn.Forward(final_layer_norm.forward(rows)));
        }
    }
}

/// <summary><c>encoder</c>: the layers and the output LayerNorm <c>layer_norm</c>.</summary>
internal sealed class LongNetEncoder : nn.Module
{
    public readonly ModuleList<LongNetEncoderLayer> layers;
    public readonly LayerNorm layer_norm;

    public LongNetEncoder(SlideEncoderConfig config) : base("LongNetEncoder")
    {
        layers = nn.ModuleList(Enumerable.Range(0, config.Depth).Select(_ => new LongNetEncoderLayer(config)).ToArray());
        layer_norm = nn.LayerNorm(config.EmbedDim, config.EncoderLayerNormEps);
        RegisterComponents();
    }
}
