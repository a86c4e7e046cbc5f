using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

#pragma warning disable IDE1006 // field names are checkpoint keys

/// <summary>
/// Multi-head self-attention as in timm's ViT: one fused <c>qkv</c> projection whose output columns are laid out
/// [3, heads, head_dim] (q, k, v outermost), softmax(q·kᵀ/√d)·v per head, heads concatenated, then <c>proj</c>.
/// </summary>
internal sealed class Attention : nn.Module<Tensor, Tensor>
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

    /// <summary>k and v of every token, [B, heads, N, head_dim] each (rows D..3D of the fused qkv weight).</summary>
    public (Tensor K, Tensor V) KeysValues(Tensor x)
    {
        long b = x.shape[0], n = x.shape[1], d = x.shape[2];
        var kv = qkv.ForwardOutputs(x, d, 2 * d).reshape(b, n, 2, _heads, d / _heads).permute(2, 0, 3, 1, 4).unbind(0);
        return (kv[0], kv[1]);
    }

    /// <summary>
    /// The attention output [1, 1, D] of one tile's CLS token (<paramref name="cls"/>: [1, 1, D]) over that tile's
    /// keys and values [1, heads, N, head_dim]: q is projected for this one token only.
    /// </summary>
    public Tensor ForwardCls(Tensor cls, Tensor k, Tensor v)
    {
        long d = cls.shape[2];
        var q = qkv.ForwardOutputs(cls, 0, d).reshape(1, 1, _heads, d / _heads).transpose(1, 2);
        var o = nn.functional.scaled_dot_product_attention(q, k, v);
        return proj.forward(o.transpose(1, 2).reshape(1, 1, d));
    }
}
