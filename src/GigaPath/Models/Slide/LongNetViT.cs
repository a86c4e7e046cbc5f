using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

#pragma warning disable IDE1006 // field names are the checkpoint's keys

/// <summary><c>patch_embed</c>: the tile-embedding projection <c>proj</c> (its norm is Identity).</summary>
internal sealed class PatchEmbed : nn.Module
{
    public readonly Linear proj;

    public PatchEmbed(SlideEncoderConfig config) : base("PatchEmbed")
    {
        proj = nn.Linear(config.InChans, config.EmbedDim);
        RegisterComponents();
    }
}

/// <summary>What one forward pass produces, all on the model's device.</summary>
internal sealed record LongNetOutputs(Tensor EncoderOut, List<Tensor>? LayerCls, List<Tensor>? LayerPooled);

/// <summary>
/// The slide encoder module tree with the checkpoint's names (<c>cls_token</c>, <c>patch_embed.proj</c>,
/// <c>encoder.layers.{i}.…</c>, <c>encoder.layer_norm</c>, <c>norm</c>). The reference's 1,000,001-row
/// <c>pos_embed</c> is a non-persistent buffer there; here rows are computed per slide by <see cref="SlidePositions"/>.
/// </summary>
internal sealed class LongNetViT : nn.Module
{
    public readonly Parameter cls_token;
    public readonly PatchEmbed patch_embed;
    public readonly LongNetEncoder encoder;
    public readonly LayerNorm norm;

    public SlideEncoderConfig Config { get; }

    public LongNetViT(SlideEncoderConfig config) : base("LongNetViT")
    {
        Config = config;
        cls_token = new Parameter(torch.zeros(1, 1, config.EmbedDim));
        patch_embed = new PatchEmbed(config);
        encoder = new LongNetEncoder(config);
        norm = nn.LayerNorm(config.EmbedDim, config.OuterNormEps);
        RegisterComponents();
    }

    /// <summary>
    /// h_0 = [cls_token; patch_embed(x) + positions] as [B, N+1, D] float32. x: [B, N, in_chans]; positions: [N, D]
    /// sin-cos rows; both on the model's device.
    /// </summary>
    public Tensor Embed(Tensor x, Tensor positions)
    {
        using var scope = torch.NewDisposeScope();
        long b = x.shape[0];
        var tiles = Projection.Apply(patch_embed.proj, x);
        tiles.add_(positions.unsqueeze(0));
        // The cls row of the reference's table is all zeros, so the cls token enters unchanged.
        return torch.cat([cls_token.expand(b, 1, Config.EmbedDim).to_type(ScalarType.Float32), tiles], 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Runs the encoder on h_0 (updated in place, so the caller hands it over). With <paramref name="allLayers"/> the
    /// cls and mean-pooled heads of every raw state h_0..h_K are returned too.
    /// </summary>
    public LongNetOutputs Forward(Tensor h, bool allLayers, AttentionBlocking blocking, ActivationSink? sink)
    {
        using var scope = torch.NewDisposeScope();
        List<Tensor>? cls = allLayers ? [] : null;
        List<Tensor>? pooled = allLayers ? [] : null;
        void Record(int i)
        {
            sink?.Invoke($"hidden_{i}", h);
            if (!allLayers) return;
            cls!.Add(HeadCls(h).MoveToOuterDisposeScope());
            pooled!.Add(HeadPooled(h).MoveToOuterDisposeScope());
        }

        Record(0);
        for (int i = 0; i < encoder.layers.Count; i++)
        {
            encoder.layers[i].Forward(h, blocking, sink, i);
            Record(i + 1);
        }
        var encoderOut = encoder.layer_norm.forward(h);
        return new LongNetOutputs(encoderOut.MoveToOuterDisposeScope(), cls, pooled);
    }

    /// <summary>LN_out(S)[:, 0] - the reference's head with global_pool = False.</summary>
    public Tensor HeadCls(Tensor state) => norm.forward(state.select(1, 0));

    /// <summary>LN_out(mean over tiles of S) - the reference's head with global_pool = True (cls excluded).</summary>
    public Tensor HeadPooled(Tensor state) => norm.forward(state.narrow(1, 1, state.shape[1] - 1).mean([1]));
}
