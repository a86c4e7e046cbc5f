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
        AttentionBlocking blocking) => Forward(q, k, v, segmentLengths, ratios, blocking, null);

    /// <summary>
    /// As <see cref="Forward(Tensor, Tensor, Tensor, IReadOnlyList{int}, IReadOnlyList{int}, AttentionBlocking)"/>;
    /// with <paramref name="saved"/> it also keeps what <see cref="Backward"/> needs: each (branch, segment chunk, head
    /// group) block's output and lse in its gathered layout (together about 2·L·D values for ratios 1, 2, 4, …: a head
    /// owns 1/r of a branch's rows) and the combination's final max and denominator per row and head.
    /// </summary>
    public static Tensor Forward(Tensor q, Tensor k, Tensor v, IReadOnlyList<int> segmentLengths, IReadOnlyList<int> ratios,
        AttentionBlocking blocking, Saved? saved)
    {
        var (batch, length, heads, headDim, branches, rows) = Geometry.Of(q, segmentLengths, ratios);
        double scale = 1.0 / Math.Sqrt(headDim);
        var accType = BlockAttention.AccumulationType(q.dtype);

        using var scope = torch.NewDisposeScope();
        var acc = torch.zeros([batch, rows, heads, headDim], accType, q.device);
        var runMax = torch.full([batch, rows, heads, 1], double.NegativeInfinity, accType, q.device);
        var runSum = torch.zeros([batch, rows, heads, 1], accType, q.device);

        foreach (var (br, c0, cc, j, h0, hc) in Blocks(branches, blocking, headDim))
        {
            using var inner = torch.NewDisposeScope();
            var qg = Gather(q, br, c0, cc, j, h0, hc);
            var kg = Gather(k, br, c0, cc, j, h0, hc);
            var vg = Gather(v, br, c0, cc, j, h0, hc);
            var (o, lse) = BlockAttention.Attend(qg, kg, vg, scale, blocking);
            qg.Dispose(); kg.Dispose(); vg.Dispose();
            var o5 = o.view(batch, cc, hc, br.Tokens, headDim).permute(0, 1, 3, 2, 4);
            var l5 = OutputLse(lse.view(batch, cc, hc, br.Tokens, 1).permute(0, 1, 3, 2, 4));
            Accumulate(Rows(acc, br, c0, cc, j, h0, hc), Rows(runMax, br, c0, cc, j, h0, hc), Rows(runSum, br, c0, cc, j, h0, hc), o5, l5);
            if (saved is not null)
            {
                saved.Outputs.Add(saved.Hold(o));
                saved.Lses.Add(saved.Hold(lse));
            }
        }

        // Where every branch reported "no output" the reference's softmax weights are uniform (1/branches) over
        // outputs that are zero except where a real lse was exactly 0; the running sum only counted owned entries.
        var degenerate = runMax.le(NoOutputLse);
        var denominator = runSum.masked_fill_(degenerate, branches.Count);
        if (saved is not null)
        {
            saved.Max = saved.Hold(runMax);
            saved.Denominator = saved.Hold(denominator);
        }
        var result = acc.narrow(1, 0, length).div(denominator.narrow(1, 0, length));
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Gradients of q, k, v ([B, L, H, d], q's dtype) given the gradient <paramref name="dOut"/> of the combined output,
    /// as the reference trains: the branch weights w_b = softmax over the branches' lse are constants (computed under
    /// <c>torch.no_grad()</c> in its <c>scattering</c>; flash-attn's autograd ignores the lse's gradient too), so each
    /// branch receives w_b · dOut on the rows it owns and back-propagates through its attention alone
    /// (<see cref="BlockAttention.AttendBackward"/>). Memory: one block's gathered buffers and scores at a time.
    /// </summary>
    public static (Tensor Dq, Tensor Dk, Tensor Dv) Backward(Tensor q, Tensor k, Tensor v, Tensor dOut, Saved saved,
        IReadOnlyList<int> segmentLengths, IReadOnlyList<int> ratios, AttentionBlocking blocking)
    {
        var (batch, length, heads, headDim, branches, rows) = Geometry.Of(q, segmentLengths, ratios);
        double scale = 1.0 / Math.Sqrt(headDim);
        var accType = BlockAttention.AccumulationType(q.dtype);

        using var scope = torch.NewDisposeScope();
        var dq = torch.zeros([batch, length, heads, headDim], accType, q.device);
        var dk = torch.zeros_like(dq);
        var dv = torch.zeros_like(dq);
        // The gradient in the padded-row layout of the combination; rows cut away after L get none.
        var dOutRows = torch.zeros([batch, rows, heads, headDim], accType, q.device);
        dOutRows.narrow(1, 0, length).copy_(dOut);
        int index = 0;
        foreach (var (br, c0, cc, j, h0, hc) in Blocks(branches, blocking, headDim))
        {
            using var inner = torch.NewDisposeScope();
            var o = saved.Outputs[index];
            var lse = saved.Lses[index];
            index++;
            var l5 = OutputLse(lse.view(batch, cc, hc, br.Tokens, 1).permute(0, 1, 3, 2, 4));
            var weight = l5.sub(Rows(saved.Max!, br, c0, cc, j, h0, hc)).exp_().div_(Rows(saved.Denominator!, br, c0, cc, j, h0, hc));
            // [B, cc, tokens, hc, d] → the gathered layout [B·cc·hc, tokens, d].
            var dO = Rows(dOutRows, br, c0, cc, j, h0, hc).mul(weight).permute(0, 1, 3, 2, 4).reshape(batch * cc * hc, br.Tokens, headDim);
            var qg = Gather(q, br, c0, cc, j, h0, hc);
            var kg = Gather(k, br, c0, cc, j, h0, hc);
            var vg = Gather(v, br, c0, cc, j, h0, hc);
            var dqg = torch.empty_like(o);
            var dkg = torch.empty_like(o);
            var dvg = torch.empty_like(o);
            BlockAttention.AttendBackward(qg, kg, vg, o, lse, dO, scale, blocking, dqg, dkg, dvg);
            Scatter(dq, dqg, br, c0, cc, j, h0, hc);
            Scatter(dk, dkg, br, c0, cc, j, h0, hc);
            Scatter(dv, dvg, br, c0, cc, j, h0, hc);
        }
        Tensor Out(Tensor g) => (g.dtype == q.dtype ? g : g.to_type(q.dtype)).MoveToOuterDisposeScope();
        return (Out(dq), Out(dk), Out(dv));
    }

    /// <summary>
    /// The combined output [B, L, H, d] recomputed from a forward's saved block results alone (no attention):
    /// Σ_b w_b·O_b with w_b = exp(lse_b - max) / denominator. <paramref name="q"/> gives the shape and device.
    /// </summary>
    public static Tensor Combine(Tensor q, Saved saved, IReadOnlyList<int> segmentLengths, IReadOnlyList<int> ratios, AttentionBlocking blocking)
    {
        var (batch, length, heads, headDim, branches, rows) = Geometry.Of(q, segmentLengths, ratios);
        using var scope = torch.NewDisposeScope();
        var acc = torch.zeros([batch, rows, heads, headDim], saved.Max!.dtype, q.device);
        int index = 0;
        foreach (var (br, c0, cc, j, h0, hc) in Blocks(branches, blocking, headDim))
        {
            using var inner = torch.NewDisposeScope();
            var o5 = saved.Outputs[index].view(batch, cc, hc, br.Tokens, headDim).permute(0, 1, 3, 2, 4);
            var l5 = OutputLse(saved.Lses[index].view(batch, cc, hc, br.Tokens, 1).permute(0, 1, 3, 2, 4));
            index++;
            var weight = l5.sub_(Rows(saved.Max!, br, c0, cc, j, h0, hc)).exp_().div_(Rows(saved.Denominator!, br, c0, cc, j, h0, hc));
            Rows(acc, br, c0, cc, j, h0, hc).add_(o5.mul(weight));
        }
        return acc.narrow(1, 0, length).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Elements (of the accumulation type) a forward's <see cref="Saved"/> holds for q of shape [B, L, H, d]: every
    /// block's output and lse, the combination's max and denominator, each as <see cref="ActivationArena.Footprint"/>
    /// counts it - exactly what <see cref="Saved.Hold"/> takes from an arena.
    /// </summary>
    public static long SavedElements(long batch, long length, long heads, long headDim, IReadOnlyList<int> segmentLengths,
        IReadOnlyList<int> ratios, AttentionBlocking blocking)
    {
        var branches = Branches(segmentLengths, ratios, length, heads);
        long rows = PaddedRows(branches);
        long total = 2 * ActivationArena.Footprint(batch, rows, heads, 1);
        foreach (var (br, _, cc, _, _, hc) in Blocks(branches, blocking, headDim))
            total += ActivationArena.Footprint(batch * cc * hc, br.Tokens, headDim) + ActivationArena.Footprint(batch * cc * hc, br.Tokens);
        return total;
    }

    /// <summary>What <see cref="Forward(Tensor, Tensor, Tensor, IReadOnlyList{int}, IReadOnlyList{int}, AttentionBlocking, Saved)"/> keeps for the backward; owns its tensors.</summary>
    /// <param name="arena">Where the kept tensors are copied (a checkpointed training forward's); null: kept as made.</param>
    internal sealed class Saved(ActivationArena? arena = null) : IDisposable
    {
        /// <summary>Keeps <paramref name="t"/> (made in the kernel's dispose scope): a copy in the arena, or t itself.</summary>
        public Tensor Hold(Tensor t) => (arena is null ? t : arena.Keep(t)).DetachFromDisposeScope();

        public List<Tensor> Outputs { get; } = [];
        public List<Tensor> Lses { get; } = [];
        public Tensor? Max { get; set; }
        public Tensor? Denominator { get; set; }

        public void Dispose()
        {
            foreach (var t in Outputs.Concat(Lses)) t.Dispose();
            Outputs.Clear();
            Lses.Clear();
            Max?.Dispose();
            Denominator?.Dispose();
            Max = Denominator = null;
        }
    }

    /// <summary>The shapes every pass over q [B, L, H, d] works with: its sizes, the branches, the padded rows.</summary>
    private readonly record struct Geometry(long Batch, long Length, long Heads, long HeadDim, List<Branch> Branches, long Rows)
    {
        public static Geometry Of(Tensor q, IReadOnlyList<int> segmentLengths, IReadOnlyList<int> ratios)
        {
            long length = q.shape[1], heads = q.shape[2];
            var branches = DilatedAttentionKernel.Branches(segmentLengths, ratios, length, heads);
            return new Geometry(q.shape[0], length, heads, q.shape[3], branches, PaddedRows(branches));
        }
    }

    /// <summary>Rows of the combination's padded layout: the longest branch's segments × padded length.</summary>
    private static long PaddedRows(List<Branch> branches) => branches.Max(b => b.SegmentsUsed * b.Padded);

    private static List<Branch> Branches(IReadOnlyList<int> segmentLengths, IReadOnlyList<int> ratios, long length, long heads) =>
        segmentLengths.Zip(ratios, (s, r) => Branch.For(s, r, length, heads)).ToList();

    /// <summary>
    /// The blocks both passes visit, in the same order: per branch, chunks of whole segments [c0, c0+cc) bounded by
    /// <see cref="AttentionBlocking.GatherElements"/>, then head group j (heads [h0, h0+hc)).
    /// </summary>
    private static IEnumerable<(Branch Br, long C0, long Cc, long J, long H0, long Hc)> Blocks(List<Branch> branches, AttentionBlocking blocking, long headDim)
    {
        foreach (var br in branches)
        {
            long heads = br.Heads;
            long perSegment = br.Tokens * br.HeadsPerGroup * headDim;
            long chunk = Math.Clamp(blocking.GatherElements / Math.Max(1, perSegment), 1, br.SegmentsUsed);
            for (long c0 = 0; c0 < br.SegmentsUsed; c0 += chunk)
            {
                long cc = Math.Min(chunk, br.SegmentsUsed - c0);
                for (long j = 0; j < br.GroupsUsed; j++)
                {
                    long h0 = j * br.HeadsPerGroup;
                    yield return (br, c0, cc, j, h0, Math.Min(br.HeadsPerGroup, heads - h0));
                }
            }
        }
    }

    /// <summary>
    /// Rows [c0·g, (c0+cc)·g) of a tensor in the combination's layout (the concatenated padded segments,
    /// [B, rows, H, ·]), at offset j and heads [h0, h0+hc): a view [B, cc, tokens, hc, ·].
    /// </summary>
    private static Tensor Rows(Tensor x, Branch br, long c0, long cc, long j, long h0, long hc) =>
        x.narrow(1, c0 * br.Padded, cc * br.Padded).view(x.shape[0], cc, br.Tokens, br.Ratio, x.shape[2], x.shape[3])
            .select(3, j).narrow(3, h0, hc);

    /// <summary>The reference's output lse: an lse of exactly 0 marks "no output" (-1e8) as empty slots do.</summary>
    private static Tensor OutputLse(Tensor lse) => lse.masked_fill(lse.eq(0), NoOutputLse);

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
        var buffer = torch.zeros([x.shape[0], cc, hc, br.Tokens, x.shape[3]], x.dtype, x.device);
        foreach (var (dense, sparse) in SparseRows(x, buffer, br, c0, cc, j, h0, hc)) sparse.copy_(dense);
        return buffer.view(x.shape[0] * cc * hc, br.Tokens, x.shape[3]);
    }

    /// <summary>The inverse of <see cref="Gather"/> for gradients: adds <paramref name="sparse"/>'s real rows into <paramref name="dense"/>.</summary>
    private static void Scatter(Tensor dense, Tensor sparse, Branch br, long c0, long cc, long j, long h0, long hc)
    {
        var buffer = sparse.view(dense.shape[0], cc, hc, br.Tokens, dense.shape[3]);
        foreach (var (rows, gathered) in SparseRows(dense, buffer, br, c0, cc, j, h0, hc)) rows.add_(gathered);
    }

    /// <summary>
    /// Pairs of matching views: rows of the dense [B, L, H, d] tensor that head group j of segments [c0, c0+cc) reads,
    /// and where they sit in the gathered buffer [B, cc, hc, tokens, d].
    /// </summary>
    private static IEnumerable<(Tensor Dense, Tensor Sparse)> SparseRows(Tensor x, Tensor buffer, Branch br, long c0, long cc, long j, long h0, long hc)
    {
        long batch = x.shape[0], length = x.shape[1], heads = x.shape[2], d = x.shape[3];
        long s = br.Segment, r = br.Ratio;
        long full = Math.Clamp(length / s - c0, 0, cc);
        if (full > 0 && j < s)
        {
            long count = (s - j + r - 1) / r;
            var rowsOfGroup = x.narrow(1, c0 * s, full * s).view(batch, full, s, heads, d)
                .slice(2, j, s, r).narrow(3, h0, hc).permute(0, 1, 3, 2, 4);
            yield return (rowsOfGroup, buffer.narrow(1, 0, full).narrow(3, 0, count));
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
                yield return (rowsOfGroup, buffer.select(1, full).narrow(2, 0, count));
            }
        }
    }

    /// <summary>Geometry of one (segment, ratio) branch for a sequence of <c>length</c> tokens.</summary>
    internal sealed record Branch(long Segment, long Ratio, long Padded, long Tokens, long HeadsPerGroup, long GroupsUsed, long SegmentsUsed, long Heads)
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
            return new Branch(s, r, g, g / r, headsPerGroup, groupsUsed, segmentsUsed, heads);
        }
    }
}
