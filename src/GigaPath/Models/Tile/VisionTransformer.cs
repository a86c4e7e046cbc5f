using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

#pragma warning disable IDE1006 // field names are checkpoint keys

/// <summary>
/// A tile encoder: timm's VisionTransformer as its named encoders build it (<see cref="TileEncoderKind"/>: class
/// token, optional register tokens, positions over every token or over the patches only, SwiGLU or GELU MLP, optional
/// LayerScale), with module and parameter names equal to the timm state-dict keys so checkpoints load by name. Weights
/// start at zero (LayerNorm at one, LayerScale at init_values) until loaded; <see cref="TileEncoder"/> loads or
/// randomises them. Pass <c>torch.META</c> as the device to describe a full-size model without allocating it.
/// </summary>
internal sealed class VisionTransformer : nn.Module<Tensor, Tensor>
{
    private readonly Parameter cls_token;
    private readonly Parameter? reg_token;
    private readonly Parameter pos_embed;
    private readonly PatchEmbed patch_embed;
    private readonly ModuleList<Block> blocks;
    private readonly LayerNorm norm;

    public TileEncoderConfig Config { get; }

    public VisionTransformer(TileEncoderConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(VisionTransformer))
    {
        Config = config.Validate();
        var type = dtype ?? ScalarType.Float32;
        cls_token = new Parameter(torch.zeros(1, 1, config.EmbedDim, dtype: type, device: device));
        if (config.RegisterTokens > 0)
            reg_token = new Parameter(torch.zeros(1, config.RegisterTokens, config.EmbedDim, dtype: type, device: device));
        pos_embed = new Parameter(torch.zeros(1, config.PositionRows, config.EmbedDim, dtype: type, device: device));
        patch_embed = new PatchEmbed(config.InputChannels, config.EmbedDim, config.PatchSize, device, dtype);
        blocks = new ModuleList<Block>(Enumerable.Range(0, config.Depth).Select(_ => new Block(config, device, dtype)).ToArray());
        norm = nn.LayerNorm(config.EmbedDim, TileEncoderConfig.LayerNormEps, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>
    /// The tile embedding [B, OutputDim] by the encoder's recipe (<see cref="TileEncoderConfig.Pooling"/>). For the
    /// class token alone, the last block computes that token only (<see cref="Block.ForwardClsToken"/>), ~2 % of the
    /// model's work saved; the result equals <c>ForwardFeatures(x)[:, 0]</c> up to float rounding.
    /// </summary>
    public override Tensor forward(Tensor pixelValues) => Embed(pixelValues, CancellationToken.None);

    /// <summary><see cref="forward"/>, checking <paramref name="cancellation"/> before each block.</summary>
    internal Tensor Embed(Tensor pixelValues, CancellationToken cancellation) => Config.Pooling == TileEmbeddingPooling.ClassToken
        ? Run(pixelValues, null, clsOnly: true, cancellation).select(1, 0)
        : Pool(ForwardFeatures(pixelValues, null, cancellation));

    /// <summary>All tokens after the final norm [B, prefix + patches, D]: the class token, the registers, then the patches.</summary>
    public Tensor ForwardFeatures(Tensor pixelValues) => ForwardFeatures(pixelValues, null);

    /// <summary>The embedding [B, OutputDim] of final-norm tokens [B, T, D] by <see cref="TileEncoderConfig.Pooling"/>.</summary>
    public Tensor Pool(Tensor tokens) => Config.Pooling switch
    {
        TileEmbeddingPooling.ClassToken => tokens.select(1, 0),
        // TRIDENT / the Virchow cards: cat([output[:, 0], output[:, prefix:].mean(1)], -1).
        _ => torch.cat([tokens.select(1, 0), tokens.narrow(1, Config.PrefixTokens, Config.PatchCount).mean([1])], 1),
    };

    /// <summary>
    /// <see cref="ForwardFeatures(Tensor)"/> that also reports intermediate values under the fixture names
    /// (patch_embed, embed, blocks.{i}.norm1/attn/mlp, blocks.{i}). Observed tensors are only valid during the
    /// callback: clone what you keep.
    /// </summary>
    internal Tensor ForwardFeatures(Tensor pixelValues, Action<string, Tensor>? observe, CancellationToken cancellation = default) =>
        Run(pixelValues, observe, clsOnly: false, cancellation);

    /// <summary>
    /// The forward pass; <paramref name="cancellation"/> is checked before every block, so a cancelled forward stops
    /// within one block (a full-size block is about 1/40 of the model's time).
    /// </summary>
    private Tensor Run(Tensor pixelValues, Action<string, Tensor>? observe, bool clsOnly, CancellationToken cancellation)
    {
        var patches = patch_embed.forward(pixelValues);
        observe?.Invoke("patch_embed", patches);
        long batch = patches.shape[0];
        var prefix = reg_token is null
            ? new[] { cls_token.expand(batch, -1, -1) }
            : new[] { cls_token.expand(batch, -1, -1), reg_token.expand(batch, -1, -1) };
        // timm's _pos_embed: with no_embed_class the positions are added to the patches before the class and register
        // tokens are prepended; otherwise they cover every token.
        var x = Config.NoEmbedClass
            ? torch.cat([.. prefix, patches.add(pos_embed)], 1)
            : torch.cat([.. prefix, patches], 1).add(pos_embed);
        observe?.Invoke("embed", x);
        for (int i = 0; i < blocks.Count; i++)
        {
            if (cancellation.IsCancellationRequested)
            {
                x.Dispose();
                cancellation.ThrowIfCancellationRequested();
            }
            // One scope per block and the previous residual freed at once: a 40-block pass then holds one block's
            // activations instead of all of them (~10 MB per tile per block in float32).
            using var scope = torch.NewDisposeScope();
            var next = clsOnly && i == blocks.Count - 1
                ? blocks[i].ForwardClsToken(x)
                : blocks[i].Forward(x, observe, $"blocks.{i}.");
            observe?.Invoke($"blocks.{i}", next);
            next.MoveToOuterDisposeScope();
            x.Dispose();
            x = next;
        }
        return norm.forward(x);
    }
}
