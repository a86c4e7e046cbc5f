using GigaPath.Models.Slide;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Slide;

/// <summary>
/// Dilated attention written with whole-tensor, differentiable operations (docs/slide-encoder.md §5, steps 1-7), in
/// the inputs' dtype: a test oracle for the blocked kernel's backward. Per (segment, ratio) branch: zero-pad to whole
/// segments of s = min(s_b, L) rows, pad each segment to g = ⌈s/r⌉·r rows, head h sees in-segment rows j(h), j(h)+r, …
/// with j(h) = h / ⌈H/r⌉, full softmax attention (no mask), outputs back at those rows (others lse -1e8, as are lse
/// values of exactly 0), padded segments concatenated and cut to L rows; branches weighted by a softmax over their lse.
/// </summary>
internal static class DenseDilatedAttention
{
    /// <param name="detachWeights">Weights as constants in the backward (the reference's no_grad), or differentiated.</param>
    /// <param name="frozenWeights">Use these branch weights ([branches, B, L, H, 1], from <see cref="BranchWeights"/>).</param>
    public static Tensor Compute(Tensor q, Tensor k, Tensor v, IReadOnlyList<int> segments, IReadOnlyList<int> ratios,
        bool detachWeights = true, Tensor? frozenWeights = null)
    {
        var (outputs, lses) = Branches(q, k, v, segments, ratios);
        var weights = frozenWeights ?? nn.functional.softmax(lses, 0).unsqueeze(-1);
        if (detachWeights) weights = weights.detach();
        return (outputs * weights).sum([0L]);
    }

    public static Tensor BranchWeights(Tensor q, Tensor k, Tensor v, IReadOnlyList<int> segments, IReadOnlyList<int> ratios)
    {
        using var _ = no_grad();
        return nn.functional.softmax(Branches(q, k, v, segments, ratios).Lses, 0).unsqueeze(-1);
    }

    /// <summary>Per-branch dense outputs [branches, B, L, H, d] and lse [branches, B, L, H].</summary>
    private static (Tensor Outputs, Tensor Lses) Branches(Tensor q, Tensor k, Tensor v, IReadOnlyList<int> segments, IReadOnlyList<int> ratios)
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
                return byHead.gather(4, index).squeeze(4);
            }

            var scores = matmul(Sparse(q), Sparse(k).transpose(-1, -2)) * scale;
            var lse = scores.logsumexp(-1, keepdim: false);
            var o = matmul(nn.functional.softmax(scores, -1), Sparse(v));
            lse = lse.masked_fill(lse.eq(0), DilatedAttentionKernel.NoOutputLse);

            // Back to dense rows [B, n, tokens, r, H, ·]: head h fills only offset j(h).
            var owned = offsetOfHead.view(1, heads).eq(arange(r, ScalarType.Int64, q.device).view(r, 1));
            var oDense = o.permute(0, 1, 3, 2, 4).unsqueeze(3) * owned.view(1, 1, 1, r, heads, 1).to_type(q.dtype);
            var lseDense = where(owned.view(1, 1, 1, r, heads), lse.permute(0, 1, 3, 2).unsqueeze(3), tensor(DilatedAttentionKernel.NoOutputLse, q.dtype, q.device));
            outputs.Add(oDense.reshape(b, n * g, heads, d).narrow(1, 0, l));
            lses.Add(lseDense.reshape(b, n * g, heads).narrow(1, 0, l));
        }
        return (stack(outputs, 0), stack(lses, 0));
    }
}
