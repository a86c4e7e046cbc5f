using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

#pragma warning disable IDE1006 // field names are checkpoint keys

/// <summary>
/// Multi-head self-attention as in timm's ViT: one fused <c>qkv</c> projection whose output columns are laid out
/// [3, heads, head_dim] (q, k, v outermost), softmax(q·kᵀ/√d)·v per head, heads concatenated, then <c>proj</c>.
/// </summary>
public sealed class Attention : nn.Module<Tensor, Tensor>
{
    private readonly LinearLayer qkv;
    private readonly LinearLayer proj;
    private readonly int _heads;

    public Attention(int dim, int heads, Device? device = null, ScalarType? dtype = null) : base(nameof(Attention))
    {
        _heads = heads;
        qkv = new LinearLayer(dim, 3L * dim, device, dtype);
        proj = new LinearLayer(dim, dim, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        long b = x.shape[0], n = x.shape[1], d = x.shape[2];
        // [B, N, 3D] -> [3, B, heads, N, head_dim]
        var parts = qkv.forward(x).reshape(b, n, 3, _heads, d / _heads).permute(2, 0, 3, 1, 4).unbind(0);
        // The default scale of scaled_dot_product_attention is 1/sqrt(head_dim), timm's scale.
        var o = nn.functional.scaled_dot_product_attention(parts[0], parts[1], parts[2]);
        return proj.forward(o.transpose(1, 2).reshape(b, n, d));
    }

    /// <summary>
    /// The attention output of the CLS token (the first) of each tile, attending to all tokens, [B, 1, D]: what the
    /// last block needs when only CLS is kept. k and v are projected for all tokens at once; q, the attention and
    /// proj run one tile at a time, so each tile's rows go through the same one-row kernels whatever the batch size
    /// (a batched one-row-per-tile GEMM would round differently for different batch sizes).
    /// </summary>
    public Tensor ForwardClsQuery(Tensor x)
    {
        long b = x.shape[0], n = x.shape[1], d = x.shape[2], hd = d / _heads;
        var kv = qkv.ForwardOutputs(x, d, 2 * d).reshape(b, n, 2, _heads, hd).permute(2, 0, 3, 1, 4).unbind(0);
        var rows = new Tensor[b];
        for (long i = 0; i < b; i++)
        {
            var q = qkv.ForwardOutputs(x.narrow(0, i, 1).narrow(1, 0, 1), 0, d).reshape(1, 1, _heads, hd).transpose(1, 2);
            var o = nn.functional.scaled_dot_product_attention(q, kv[0].narrow(0, i, 1), kv[1].narrow(0, i, 1));
            rows[i] = proj.forward(o.transpose(1, 2).reshape(1, 1, d));
        }
        return torch.cat(rows, 0);
    }
}
