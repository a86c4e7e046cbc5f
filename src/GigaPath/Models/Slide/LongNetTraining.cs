using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>
/// A differentiable forward pass through a <see cref="LongNetViT"/>'s modules, for fine-tuning. The inference path
/// (<see cref="SlideEncoder.Embed(Tensor, Tensor, bool)"/>) updates hidden states in place and streams attention
/// blocks to bound memory, which autograd cannot follow; this path builds every intermediate out of place (memory
/// grows with the branches' score matrices) and applies the reference's training-mode dropout: after the embedding,
/// after each attention block and after each FFN (torchscale's <c>dropout_module</c>s). Drop-path is not applied
/// (the reference's fine-tuning recipe sets drop_path_rate 0). In evaluation mode it computes the same numbers as the
/// inference path (docs/slide-encoder.md §4-5).
/// </summary>
internal static class LongNetTraining
{
    /// <summary>
    /// The raw hidden states h_0..h_K ([1, N+1, D] each, cls first) of one slide: x [N, in_chans], coords [N, 2].
    /// </summary>
    public static List<Tensor> HiddenStates(LongNetViT model, Tensor x, Tensor coords, double dropout, bool training)
    {
        var config = model.Config;
        var (embeddings, xy) = SlideInputValidation.Check(x, coords, config);
        var cells = SlidePositions.ToGridCells(xy, config.TileSize, config.SlideNgrids);
        var weightType = model.patch_embed.proj.weight!.dtype;
        var positions = SlidePositions.SinCosRows(cells.Gx, cells.Gy, config.EmbedDim).to(weightType, embeddings.device);

        var tiles = model.patch_embed.proj.forward(embeddings.to_type(weightType).unsqueeze(0)) + positions.unsqueeze(0);
        var h = cat([model.cls_token.to_type(tiles.dtype), tiles], 1);
        h = nn.functional.dropout(h, dropout, training);
        var states = new List<Tensor> { h };
        foreach (var layer in model.encoder.layers)
        {
            var attn = layer.self_attn;
            var a = layer.self_attn_layer_norm.forward(h);
            long l = a.shape[1], heads = config.NumHeads, d = config.HeadDim;
            var q = attn.q_proj.forward(a).view(1, l, heads, d);
            var k = attn.k_proj.forward(a).view(1, l, heads, d);
            var v = attn.v_proj.forward(a).view(1, l, heads, d);
            var mixed = DilatedAttention(q, k, v, config.SegmentLength, config.DilatedRatio).reshape(1, l, config.EmbedDim);
            var u = attn.out_proj.forward(attn.inner_attn_ln.forward(mixed.to_type(a.dtype)));
            h = h + nn.functional.dropout(u, dropout, training);

            var ffn = layer.ffn;
            var f = ffn.fc2.forward(ffn.ffn_layernorm.forward(nn.functional.gelu(ffn.fc1.forward(layer.final_layer_norm.forward(h)))));
            h = h + nn.functional.dropout(f, dropout, training);
            states.Add(h);
        }
        return states;
    }

    /// <summary>The reference's head on a state: LN_out(S)[:, 0], or LN_out(mean of the tile rows) with global pooling.</summary>
    public static Tensor Head(LongNetViT model, Tensor state, bool globalPool) =>
        globalPool ? model.HeadPooled(state) : model.HeadCls(state);

    /// <summary>
    /// Dilated attention written with whole-tensor operations (docs/slide-encoder.md §5, steps 1-7). q, k, v:
    /// [B, L, H, d]. For each (segment, ratio) branch: zero-pad to whole segments of s = min(s_b, L) rows, pad each
    /// segment to g = ⌈s/r⌉·r rows, let head h see in-segment rows j(h), j(h)+r, … with j(h) = h / ⌈H/r⌉, attend with
    /// no mask (padded keys included), put outputs back at those rows (others get lse = -1e8, as do lse values of
    /// exactly 0), concatenate the padded segments and keep the first L rows; finally weight the branches by a softmax
    /// over their log-sum-exps. Returns [B, L, H, d] float32.
    /// </summary>
    public static Tensor DilatedAttention(Tensor q, Tensor k, Tensor v, IReadOnlyList<int> segments, IReadOnlyList<int> ratios)
    {
        long b = q.shape[0], l = q.shape[1], heads = q.shape[2], d = q.shape[3];
        double scale = 1.0 / Math.Sqrt(d);
        var outputs = new List<Tensor>();
        var lses = new List<Tensor>();
        foreach (var (segment, ratio) in segments.Zip(ratios))
        {
            long s = Math.Min(segment, l), r = ratio;
            long n = (l + s - 1) / s, g = (s + r - 1) / r * r, tokens = g / r;
            long headsPerGroup = (heads + r - 1) / r;
            var offsetOfHead = tensor(Enumerable.Range(0, (int)heads).Select(h => h / headsPerGroup).ToArray(), device: q.device);

            Tensor Sparse(Tensor x)
            {
                var padded = nn.functional.pad(x, [0, 0, 0, 0, 0, n * s - l]).view(b, n, s, heads, d);
                padded = nn.functional.pad(padded, [0, 0, 0, 0, 0, g - s]).view(b, n, tokens, r, heads, d);
                // [B, n, H, tokens, r, d] then, per head, the rows at its offset.
                var byHead = padded.permute(0, 1, 4, 2, 3, 5);
                var index = offsetOfHead.view(1, 1, heads, 1, 1, 1).expand(b, n, heads, tokens, 1, d);
                return byHead.gather(4, index).squeeze(4).to_type(ScalarType.Float32);
            }

            var qs = Sparse(q);
            var ks = Sparse(k);
            var vs = Sparse(v);
            var scores = matmul(qs, ks.transpose(-1, -2)) * scale;
            var lse = scores.logsumexp(-1, keepdim: false);
            var o = matmul(nn.functional.softmax(scores, -1), vs);
            lse = lse.masked_fill(lse.eq(0), NoOutput);

            // Back to dense rows [B, n, tokens, r, H, ·]: head h fills only offset j(h).
            var owned = offsetOfHead.view(1, heads).eq(arange(r, ScalarType.Int64, q.device).view(r, 1));
            var oDense = o.permute(0, 1, 3, 2, 4).unsqueeze(3) * owned.view(1, 1, 1, r, heads, 1).to_type(ScalarType.Float32);
            var lseDense = where(owned.view(1, 1, 1, r, heads), lse.permute(0, 1, 3, 2).unsqueeze(3), tensor(NoOutput, device: q.device));
            outputs.Add(oDense.reshape(b, n * g, heads, d).narrow(1, 0, l));
            lses.Add(lseDense.reshape(b, n * g, heads).narrow(1, 0, l));
        }
        var weights = nn.functional.softmax(stack(lses, 0), 0).unsqueeze(-1);
        return (stack(outputs, 0) * weights).sum([0L]);
    }

    private const float NoOutput = DilatedAttentionKernel.NoOutputLse;
}
