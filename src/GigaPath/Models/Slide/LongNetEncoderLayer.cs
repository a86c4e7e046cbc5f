using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

#pragma warning disable IDE1006 // field names are the checkpoint's keys

/// <summary>
/// <c>encoder.layers.{i}.ffn</c>: fc1 → exact GELU (float32) → sub-LN <c>ffn_layernorm</c> → fc2 → dropout (torchscale's
/// <c>dropout_module</c>; the activation dropout is 0 in the reference's config).
/// </summary>
internal sealed class FeedForwardNetwork : nn.Module
{
    public readonly Linear fc1;
    public readonly Linear fc2;
    public readonly LayerNorm ffn_layernorm;
    public readonly Dropout dropout_module;

    public FeedForwardNetwork(SlideEncoderConfig config, double dropout) : base("FeedForwardNetwork")
    {
        fc1 = nn.Linear(config.EmbedDim, config.FeedForwardDim);
        fc2 = nn.Linear(config.FeedForwardDim, config.EmbedDim);
        ffn_layernorm = nn.LayerNorm(config.FeedForwardDim, config.EncoderLayerNormEps);
        dropout_module = nn.Dropout(dropout);
        RegisterComponents();
    }

    /// <summary>
    /// The FFN on <paramref name="x"/>. <paramref name="noise"/>, when given, is the output dropout's multiplier for
    /// these rows (see <see cref="LongNetEncoderLayer.FfnDropoutNoise"/>), used instead of drawing a mask here.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor? noise = null)
    {
        using var scope = torch.NewDisposeScope();
        var f = nn.functional.gelu(Projection.Apply(fc1, x));
        var y = Projection.Apply(fc2, ffn_layernorm.forward(f));
        return (noise is null ? dropout_module.forward(y) : y.mul(noise)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// <c>encoder.layers.{i}</c>: pre-LN layer with sub-LN, residual weight 1:
/// h += dropout(attn(LN_attn(h))); h += ffn(LN_ffn(h)). LayerNorms and residuals stay float32 whatever the weights' dtype.
/// </summary>
internal sealed class LongNetEncoderLayer : nn.Module
{
    public readonly DilatedAttention self_attn;
    public readonly LayerNorm self_attn_layer_norm;
    public readonly FeedForwardNetwork ffn;
    public readonly LayerNorm final_layer_norm;
    public readonly Dropout dropout_module;

    public LongNetEncoderLayer(SlideEncoderConfig config, double dropout) : base("LongNetEncoderLayer")
    {
        self_attn = new DilatedAttention(config);
        self_attn_layer_norm = nn.LayerNorm(config.EmbedDim, config.EncoderLayerNormEps);
        ffn = new FeedForwardNetwork(config, dropout);
        final_layer_norm = nn.LayerNorm(config.EmbedDim, config.EncoderLayerNormEps);
        dropout_module = nn.Dropout(dropout);
        RegisterComponents();
    }

    /// <summary>
    /// The layer on <paramref name="h"/> [B, L, D] float32. With a <paramref name="workspace"/> (inference: no autograd,
    /// evaluation mode) it updates h itself: the layer norms, projections and FFN run <see cref="LongNetViT.RowsPerChunk"/>
    /// rows at a time and q, k, v and the attention output live in the workspace, so a layer allocates nothing whose
    /// size grows with the slide. Without one a new tensor is returned and every step is visible to autograd.
    /// </summary>
    public Tensor Forward(Tensor h, AttentionBlocking blocking, ActivationSink? sink, int layer, SlideWorkspace? workspace)
    {
        if (workspace is null)
        {
            var attended = Attend(h, blocking, sink, layer);
            var result = FeedForward(attended, null);
            attended.Dispose();
            return result;
        }
        if (training || torch.is_grad_enabled())
            throw new InvalidOperationException("the in-place layer forward is for inference only (evaluation mode, no autograd)");
        long length = h.shape[1], chunk = LongNetViT.RowsPerChunk;
        if (sink is not null)
        {
            using var normed = self_attn_layer_norm.forward(h);
            sink($"attn_in_{layer}", normed);
        }
        for (long r0 = 0; r0 < length; r0 += chunk)
        {
            using var scope = torch.NewDisposeScope();
            long rows = Math.Min(chunk, length - r0);
            self_attn.ProjectInto(self_attn_layer_norm.forward(h.narrow(1, r0, rows)), workspace, r0);
        }
        using (var scope = torch.NewDisposeScope())
        {
            var attn = self_attn.AttendInWorkspace(workspace, blocking, sink, layer);
            // attn_out is whole only for a sink (tests); otherwise each chunk goes straight into h.
            var output = sink is null ? null : torch.empty_like(h);
            for (long r0 = 0; r0 < length; r0 += chunk)
            {
                using var inner = torch.NewDisposeScope();
                long rows = Math.Min(chunk, length - r0);
                var u = self_attn.Output(attn.narrow(1, r0, rows));
                if (output is null) h.narrow(1, r0, rows).add_(u);
                else output.narrow(1, r0, rows).copy_(u);
            }
            if (output is not null)
            {
                sink!($"attn_out_{layer}", output);
                h.add_(output);
            }
        }
        for (long r0 = 0; r0 < length; r0 += chunk)
        {
            using var scope = torch.NewDisposeScope();
            var rows = h.narrow(1, r0, Math.Min(chunk, length - r0));
            rows.add_(ffn.Forward(final_layer_norm.forward(rows)));
        }
        return h;
    }

    /// <summary>The attention half of the layer, out of place: h + dropout(attn(LN_attn(h))) (a new tensor).</summary>
    public Tensor Attend(Tensor h, AttentionBlocking blocking, ActivationSink? sink, int layer)
    {
        using var scope = torch.NewDisposeScope();
        return h.add(dropout_module.forward(Attention(h, blocking, sink, layer))).MoveToOuterDisposeScope();
    }

    /// <summary>attn(LN_attn(h)), in the caller's dispose scope.</summary>
    private Tensor Attention(Tensor h, AttentionBlocking blocking, ActivationSink? sink, int layer)
    {
        var a = self_attn_layer_norm.forward(h);
        sink?.Invoke($"attn_in_{layer}", a);
        var (q, k, v) = self_attn.Project(a);
        a.Dispose();
        var u = self_attn.Forward(q, k, v, blocking, sink, layer);
        sink?.Invoke($"attn_out_{layer}", u);
        return u;
    }

    /// <summary>
    /// The FFN's output-dropout multiplier for all rows of <paramref name="attended"/> ([B, L, D], or null in evaluation
    /// mode): on CPU, dropout(x) is x · (bernoulli(1-p) / (1-p)) with the mask drawn for x's whole shape, so
    /// dropout(ones) draws the same numbers from the generator and multiplying rows by slices of it is the unchunked
    /// dropout exactly. This is what lets the FFN run in row chunks without changing the masks.
    /// </summary>
    public Tensor? FfnDropoutNoise(Tensor attended)
    {
        if (!ffn.dropout_module.training) return null;
        using var _ = torch.no_grad();
        return ffn.dropout_module.forward(torch.ones_like(attended));
    }

    /// <summary>The FFN half of the layer on some rows: rows + ffn(LN_ffn(rows)), with the rows' dropout multiplier.</summary>
    public Tensor FeedForward(Tensor rows, Tensor? noise)
    {
        using var scope = torch.NewDisposeScope();
        return rows.add(ffn.Forward(final_layer_norm.forward(rows), noise)).MoveToOuterDisposeScope();
    }
}

/// <summary><c>encoder</c>: the layers, the output LayerNorm <c>layer_norm</c> and the embedding dropout.</summary>
internal sealed class LongNetEncoder : nn.Module
{
    public readonly ModuleList<LongNetEncoderLayer> layers;
    public readonly LayerNorm layer_norm;
    public readonly Dropout dropout_module;

    public LongNetEncoder(SlideEncoderConfig config, double dropout) : base("LongNetEncoder")
    {
        layers = nn.ModuleList(Enumerable.Range(0, config.Depth).Select(_ => new LongNetEncoderLayer(config, dropout)).ToArray());
        layer_norm = nn.LayerNorm(config.EmbedDim, config.EncoderLayerNormEps);
        dropout_module = nn.Dropout(dropout);
        RegisterComponents();
    }
}
