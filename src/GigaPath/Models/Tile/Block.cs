using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

#pragma warning disable IDE1006 // field names are checkpoint keys

/// <summary>
/// A pre-norm transformer block: t + ls1(attn(norm1(t))), then + ls2(mlp(norm2(·))); without LayerScale
/// (<see cref="TileEncoderConfig.LayerScaleInit"/> null) the branches are added as they are.
/// </summary>
internal sealed class Block : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm norm1;
    private readonly Attention attn;
    private readonly LayerScale? ls1;
    private readonly LayerNorm norm2;
    private readonly nn.Module<Tensor, Tensor> mlp;
    private readonly LayerScale? ls2;

    public Block(TileEncoderConfig cfg, Device? device = null, ScalarType? dtype = null) : base(nameof(Block))
    {
        norm1 = nn.LayerNorm(cfg.EmbedDim, TileEncoderConfig.LayerNormEps, device: device, dtype: dtype);
        attn = new Attention(cfg.EmbedDim, cfg.HeadCount, device, dtype);
        norm2 = nn.LayerNorm(cfg.EmbedDim, TileEncoderConfig.LayerNormEps, device: device, dtype: dtype);
        mlp = cfg.Mlp == TileMlp.Gelu
            ? new GeluMlp(cfg.EmbedDim, cfg.MlpHiddenDim, device, dtype)
            : new SwiGluMlp(cfg.EmbedDim, cfg.MlpPackedHiddenDim, device, dtype);
        if (cfg.LayerScaleInit is { } init)
        {
            ls1 = new LayerScale(cfg.EmbedDim, init, device, dtype);
            ls2 = new LayerScale(cfg.EmbedDim, init, device, dtype);
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, null, "");

    /// <summary>residual + branch, scaled by the LayerScale when the block has one.</summary>
    private static Tensor AddBranch(LayerScale? scale, Tensor residual, Tensor branch) =>
        scale is null ? residual.add(branch) : scale.AddTo(residual, branch);

    /// <summary>The forward pass, reporting the branch values to <paramref name="observe"/> (for locating parity bugs).</summary>
    internal Tensor Forward(Tensor x, Action<string, Tensor>? observe, string prefix)
    {
        var normed = norm1.forward(x);
        observe?.Invoke(prefix + "norm1", normed);
        var a = attn.forward(normed);
        observe?.Invoke(prefix + "attn", a);
        x = AddBranch(ls1, x, a);
        var m = mlp.forward(norm2.forward(x));
        observe?.Invoke(prefix + "mlp", m);
        return AddBranch(ls2, x, m);
    }

    /// <summary>
    /// The block's output for the first token (CLS) only, [B, 1, D]. Every other token's output is dropped by the
    /// embedding, and LayerNorm, the MLP and the residuals act per token, so only CLS's attention row is needed.
    /// </summary>
    internal Tensor ForwardClsToken(Tensor x)
    {
        var normed = norm1.forward(x);
        var (k, v) = attn.KeysValues(normed);
        // k and v for the whole batch at once; the CLS rows one tile at a time, so that each goes through the same
        // one-row kernels whatever the batch size (a batched one-row-per-tile GEMM rounds differently per batch size).
        var rows = new Tensor[x.shape[0]];
        for (long i = 0; i < rows.Length; i++)
        {
            var a = attn.ForwardCls(normed.narrow(0, i, 1).narrow(1, 0, 1), k.narrow(0, i, 1), v.narrow(0, i, 1));
            var cls = AddBranch(ls1, x.narrow(0, i, 1).narrow(1, 0, 1), a);
            rows[i] = AddBranch(ls2, cls, mlp.forward(norm2.forward(cls)));
        }
        return torch.cat(rows, 0);
    }
}
