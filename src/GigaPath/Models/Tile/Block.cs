using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

#pragma warning disable IDE1006 // field names are checkpoint keys

/// <summary>A pre-norm transformer block: t + ls1(attn(norm1(t))), then + ls2(mlp(norm2(·))).</summary>
internal sealed class Block : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm norm1;
    private readonly Attention attn;
    private readonly LayerScale ls1;
    private readonly LayerNorm norm2;
    private readonly SwiGluMlp mlp;
    private readonly LayerScale ls2;

    public Block(TileEncoderConfig cfg, Device? device = null, ScalarType? dtype = null) : base(nameof(Block))
    {
        norm1 = nn.LayerNorm(cfg.EmbedDim, TileEncoderConfig.LayerNormEps, device: device, dtype: dtype);
        attn = new Attention(cfg.EmbedDim, cfg.NumHeads, device, dtype);
        ls1 = new LayerScale(cfg.EmbedDim, cfg.InitValues, device, dtype);
        norm2 = nn.LayerNorm(cfg.EmbedDim, TileEncoderConfig.LayerNormEps, device: device, dtype: dtype);
        mlp = new SwiGluMlp(cfg.EmbedDim, cfg.MlpPackedHidden, device, dtype);
        ls2 = new LayerScale(cfg.EmbedDim, cfg.InitValues, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Forward(x, null, "");

    /// <summary>The forward pass, reporting the branch values to <paramref name="observe"/> (for locating parity bugs).</summary>
    internal Tensor Forward(Tensor x, Action<string, Tensor>? observe, string prefix)
    {
        var normed = norm1.forward(x);
        observe?.Invoke(prefix + "norm1", normed);
        var a = attn.forward(normed);
        observe?.Invoke(prefix + "attn", a);
        x = ls1.AddTo(x, a);
        var m = mlp.forward(norm2.forward(x));
        observe?.Invoke(prefix + "mlp", m);
        return ls2.AddTo(x, m);
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
            var cls = ls1.AddTo(x.narrow(0, i, 1).narrow(1, 0, 1), a);
            rows[i] = ls2.AddTo(cls, mlp.forward(norm2.forward(cls)));
        }
        return torch.cat(rows, 0);
    }
}
