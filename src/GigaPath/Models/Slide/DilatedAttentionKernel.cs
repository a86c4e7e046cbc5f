using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>
/// LongNet dilated attention over projected q, k, v, with the reference's exact bookkeeping (docs/slide-encoder.md §5):
/// for each (segment s_b, ratio r) branch the sequence is cut into segments of s = min(s_b, L) tokens (zero rows pad
/// the last one), each segment is padded to g = ⌈s/r⌉·r rows, head h (group j = h / ⌈H/r⌉, contiguous blocks) attends
/// among the rows j, j+r, … of its segment, zero-padded keys included. Outputs land at row (segment·g + in-segment
/// index) of the concatenated padded segments, cut to L rows - which shifts later segments when s % r ≠ 0, as the
/// reference does. Branches are combined by a softmax over their log-sum-exps (lse -1e8 where a head does not own a
/// row, and where lse is exactly 0).
/// <para>Memory: the combination is accumulated online (running max / sum per row and head), gathered buffers are
/// bounded by <see cref="AttentionBlocking.GatherElements"/> and scores by the block sizes, so extra memory is a
/// small multiple of L·D whatever the segment lengths.</para>
/// </summary>
internal static class DilatedAttentionKernel
{
    /// <summary>The reference's marker for "this branch has no output here".</summary>
    public const float NoOutputLse = -1e8f;

    /// <summary>q, k, v: [B, L, H, d] contiguous. Returns the branch-combined attention [B, L, H, d] in float32.</summary>
    public static Tensor Forward(Tensor q, Tensor k, Tensor v, IReadOnlyList<int> segmentLengths, IReadOnlyList<int> ratios,
        AttentionBlocking blocking)
    {
        long batch = q.shape[0], length = q.shape[1], heads = q.shape[2], headDim = q.shape[3];
        double scale = 1.0 / Math.Sqrt(headDim);
        var branches = segmentLengths.Zip(ratios, (s, r) => Branch.For(s, r, length, heads)).ToList();
        long rows = branches.Max(b => b.SegmentsUsed * b.Padded);

        using var scope = torch.NewDisposeScope();
        var acc = torch.zeros([batch, rows, heads, headDim], ScalarType.Float32, q.device);
        var runMax = torch.full([batch, rows, heads, 1], double.NegativeInfinity, ScalarType.Float32, q.device);
        var runSum = torch.zeros([batch, rows, heads, 1], ScalarType.Float32, q.device);

        foreach (var br in branches)
        {
            long perSegment = br.Tokens * br.HeadsPerGroup * headDim;
            long chunk = Math.Clamp(blocking.GatherElements / Math.Max(1, perSegment), 1, br.SegmentsUsed);
            for (long c0 = 0; c0 < br.SegmentsUsed; c0 += chunk)
            {
                long cc = Math.Min(chunk, br.SegmentsUsed - c0);
                // Rows [c0·g, (c0+cc)·g) of the concatenated padded segments, split as [B, segment, token, offset, H, ·].
                var accChunk = acc.narrow(1, c0 * br.Padded, cc * br.Padded).view(batch, cc, br.Tokens, br.Ratio, heads, headDim);
                var maxChunk = runMax.narrow(1, c0 * br.Padded, cc * br.Padded).view(batch, cc, br.Tokens, br.Ratio, heads, 1);
                var sumChunk = runSum.narrow(1, c0 * br.Padded, cc * br.Padded).view(batch, cc, br.Tokens, br.Ratio, heads, 1);
                for (long j = 0; j < br.GroupsUsed; j++)
                {
                    using var inner = torch.NewDisposeScope();
                    long h0 = j * br.HeadsPerGroup;
                    long hc = Math.Min(br.HeadsPerGroup, heads - h0);
                    var qg = Gather(q, br, c0, cc, j, h0, hc);
                    var kg = Gather(k, br, c0, cc, j, h0, hc);
                    var vg = Gather(v, br, c0, cc, j, h0, hc);
                    var (o, lse) = BlockAttention.Attend(qg, kg, vg, scale, blocking);
                    qg.Dispose(); kg.Dispose(); vg.Dispose();
                    var o5 = o.view(batch, cc, hc, br.Tokens, headDim).permute(0, 1, 3, 2, 4);
                    var l5 = lse.view(batch, cc, hc, br.Tokens, 1).permute(0, 1, 3, 2, 4);
                    l5 = l5.masked_fill(l5.eq(0), NoOutputLse);
                    Accumulate(
                        accChunk.select(3, j).narrow(3, h0, hc),
                        maxChunk.select(3, j).narrow(3, h0, hc),
                        sumChunk.select(3, j).narrow(3, h0, hc),
                        o5, l5);
                }
            }
        }

        // Where every branch reported "no output" the reference's softmax weights are uniform (1/branches) over
        // outputs that are zero except where a real lse was exactly 0; the running sum only counted owned entries.
        var degenerate = runMax.le(NoOutputLse);
        var denominator = runSum.masked_fill(degenerate, branches.Count);
        var result = acc.narrow(1, 0, length).div_(denominator.narrow(1, 0, length));
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Online softmax-of-lse update of the running combination for the rows one head group owns.</summary>
    private static void Accumulate(Tensor acc, Tensor runMax, Tensor runSum, Tensor output, Tensor lse)
    {
        var newMax = torch.maximum(runMax, lse);
        var keep = runMax.sub(newMax).exp_();
        var weight = lse.sub(newMax).exp_();
        acc.mul_(keep).add_(output.mul(weight));
        runSum.mul_(keep).add_(weight);
        runMax.copy_(newMax);
    }

    /// <summary>
    /// The sparse rows of head group <paramref name="j"/> (in-segment rows j, j+r, …, heads [h0, h0+hc)) of segments
    /// [c0, c0+cc), as [B·cc·hc, tokens, d]; rows beyond the real sequence stay zero (the reference's zero padding).
    /// </summary>
    private static Tensor Gather(Tensor x, Branch br, long c0, long cc, long j, long h0, long hc)
    {
        long batch = x.shape[0], length = x.shape[1], heads = x.shape[2], d = x.shape[3];
        long s = br.Segment, r = br.Ratio;
        var buffer = torch.zeros([batch, cc, hc, br.Tokens, d], x.dtype, x.device);
        long full = Math.Clamp(length / s - c0, 0, cc);
        if (full > 0 && j < s)
        {
            long count = (s - j + r - 1) / r;
            var rowsOfGroup = x.narrow(1, c0 * s, full * s).view(batch, full, s, heads, d)
                .slice(2, j, s, r).narrow(3, h0, hc).permute(0, 1, 3, 2, 4);
            buffer.narrow(1, 0, full).narrow(3, 0, count).copy_(rowsOfGroup);
        }
        if (full < cc)
        {
            // Only the sequence's last segment can be partial.
            Debug.Assert(full == cc - 1);
            long start = (c0 + full) * s;
            long real = length - start;
            Debug.Assert(real > 0 && real < s);
            if (real > j)
            {
                long count = (real - j + r - 1) / r;
                var rowsOfGroup = x.narrow(1, start, real).slice(1, j, real, r).narrow(2, h0, hc).permute(0, 2, 1, 3);
                buffer.select(1, full).narrow(2, 0, count).copy_(rowsOfGroup);
            }
        }
        return buffer.view(batch * cc * hc, br.Tokens, d);
    }

    /// <summary>Geometry of one (segment, ratio) branch for a sequence of <c>length</c> tokens.</summary>
    internal sealed record Branch(long Segment, long Ratio, long Padded, long Tokens, long HeadsPerGroup, long GroupsUsed, long SegmentsUsed)
    {
        public static Branch For(int segmentLength, int ratio, long length, long heads)
        {
            long s = Math.Min(segmentLength, length);
            long r = ratio;
            long g = (s + r - 1) / r * r;
            long headsPerGroup = (heads + r - 1) / r;
            long groupsUsed = (heads + headsPerGroup - 1) / headsPerGroup;
            // Segments whose padded rows start at or after L are cut away entirely: skip them.
            long segmentsUsed = (length + g - 1) / g;
            return new Branch(s, r, g, g / r, headsPerGroup, groupsUsed, segmentsUsed);
        }
    }
}
