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
    /// As <see cref="Forward(Tensor, Tensor, Tensor, IReadOnlyList{int}, IReadOnlyList{int}, AttentionBlocking)"/>,
    /// with a record of the (branch, segment chunk, head group) blocks' outputs and lses in their gathered layout
    /// (together about 2·L·D values for ratios 1, 2, 4, …: a head owns 1/r of a branch's rows).
    /// <para>A block already in <paramref name="saved"/> (an earlier run on the same q, k, v) is taken from it, not
    /// computed; a block it lacks is computed and added when <see cref="Saved.Keeps"/> says so. The blocks are combined
    /// in the same order with the same operations either way, so a re-run that replays some or all blocks returns the
    /// first run's output bit for bit. <see cref="Backward"/> needs a record of every block and of the combination's
    /// final max and denominator per row and head, which this sets.</para>
    /// </summary>
    /// <param name="q">Queries [B, L, H, d], contiguous.</param>
    /// <param name="k">Keys, as q.</param>
    /// <param name="v">Values, as q.</param>
    /// <param name="segmentLengths">The branches' segment lengths.</param>
    /// <param name="ratios">The branches' dilation ratios.</param>
    /// <param name="blocking">Block and buffer sizes.</param>
    /// <param name="saved">Block results to take or keep (training); null for none.</param>
    /// <param name="combination">
    /// Where to accumulate (an inference forward's <see cref="SlideWorkspace"/>, reused layer after layer): the output
    /// is then a view into its accumulator, valid until the next call. Null: new tensors, the output owned by the caller.
    /// </param>
    public static Tensor Forward(Tensor q, Tensor k, Tensor v, IReadOnlyList<int> segmentLengths, IReadOnlyList<int> ratios,
        AttentionBlocking blocking, Saved? saved, Combination? combination = null)
    {
        var (batch, length, heads, headDim, branches, rows) = Geometry.Of(q, segmentLengths, ratios);
        double scale = 1.0 / Math.Sqrt(headDim);
        var accType = BlockAttention.AccumulationType(q.dtype);
        if (combination is not null && (saved is not null || combination.Accumulator.dtype != accType
            || !combination.Accumulator.shape.SequenceEqual(new[] { batch, rows, heads, headDim })))
            throw new ArgumentException("the combination buffers do not fit this call", nameof(combination));

        using var scope = torch.NewDisposeScope();
        var acc = combination?.Accumulator.zero_() ?? torch.zeros([batch, rows, heads, headDim], accType, q.device);
        var runMax = combination?.Max.fill_(double.NegativeInfinity) ?? torch.full([batch, rows, heads, 1], double.NegativeInfinity, accType, q.device);
        var runSum = combination?.Sum.zero_() ?? torch.zeros([batch, rows, heads, 1], accType, q.device);

        int index = 0;
        foreach (var (b, br, c0, cc, j, h0, hc) in Blocks(branches, blocking, headDim))
        {
            using var inner = torch.NewDisposeScope();
            var (o, lse) = saved?.Block(index) ?? Attend(q, k, v, br, c0, cc, j, h0, hc, scale, blocking);
            var o5 = o.view(batch, cc, hc, br.Tokens, headDim).permute(0, 1, 3, 2, 4);
            var l5 = OutputLse(lse.view(batch, cc, hc, br.Tokens, 1).permute(0, 1, 3, 2, 4));
            Accumulate(Rows(acc, br, c0, cc, j, h0, hc), Rows(runMax, br, c0, cc, j, h0, hc), Rows(runSum, br, c0, cc, j, h0, hc), o5, l5);
            if (saved is not null && saved.Keeps(b)) saved.Add(index, o, lse);
            index++;
        }

        // Where every branch reported "no output" the reference's softmax weights are uniform (1/branches) over
        // outputs that are zero except where a real lse was exactly 0; the running sum only counted owned entries.
        var degenerate = runMax.le(NoOutputLse);
        var denominator = runSum.masked_fill_(degenerate, branches.Count);
        saved?.SetCombination(runMax, denominator);
        var result = combination is null
            ? acc.narrow(1, 0, length).div(denominator.narrow(1, 0, length))
            : acc.narrow(1, 0, length).div_(denominator.narrow(1, 0, length));
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The buffers the branch combination accumulates in, for q of [B, L, H, d]: the weighted sum
    /// [B, rows, H, d] and the running max and denominator [B, rows, H, 1] per row and head, rows being the padded
    /// layout's (L rounded up to the longest branch's segments). Owns its tensors.
    /// </summary>
    internal sealed class Combination : IDisposable
    {
        private Combination(Tensor accumulator, Tensor max, Tensor sum) => (Accumulator, Max, Sum) = (accumulator, max, sum);

        public Tensor Accumulator { get; }
        public Tensor Max { get; }
        public Tensor Sum { get; }

        /// <summary>Buffers for queries of <paramref name="queryDType"/> and shape [batch, length, heads, headDim].</summary>
        public static Combination Allocate(long batch, long length, long heads, long headDim, IReadOnlyList<int> segmentLengths,
            IReadOnlyList<int> ratios, ScalarType queryDType, Device device)
        {
            long rows = PaddedRows(Branches(segmentLengths, ratios, length, heads));
            var type = BlockAttention.AccumulationType(queryDType);
            return new Combination(SlideWorkspace.Buffer([batch, rows, heads, headDim], type, device),
                SlideWorkspace.Buffer([batch, rows, heads, 1], type, device), SlideWorkspace.Buffer([batch, rows, heads, 1], type, device));
        }

        public void Dispose()
        {
            Accumulator.Dispose();
            Max.Dispose();
            Sum.Dispose();
        }
    }

    /// <summary>One block's attention: the gathered rows of head group j of segments [c0, c0+cc) among themselves.</summary>
    private static (Tensor Out, Tensor Lse) Attend(Tensor q, Tensor k, Tensor v, Branch br, long c0, long cc, long j, long h0, long hc,
        double scale, AttentionBlocking blocking)
    {
        using var qg = Gather(q, br, c0, cc, j, h0, hc);
        using var kg = Gather(k, br, c0, cc, j, h0, hc);
        using var vg = Gather(v, br, c0, cc, j, h0, hc);
        return BlockAttention.Attend(qg, kg, vg, scale, blocking);
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
        foreach (var (_, br, c0, cc, j, h0, hc) in Blocks(branches, blocking, headDim))
        {
            using var inner = torch.NewDisposeScope();
            var (o, lse) = saved.Block(index) ?? throw new InvalidOperationException($"the forward kept no result for attention block {index}");
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
            var (realKeys, liveQueries) = LiveRows(br, c0, cc, j, hc, batch, length);
            BlockAttention.AttendBackward(qg, kg, vg, o, lse, dO, scale, blocking, dqg, dkg, dvg, realKeys, liveQueries);
            Scatter(dq, dqg, br, c0, cc, j, h0, hc);
            Scatter(dk, dkg, br, c0, cc, j, h0, hc);
            Scatter(dv, dvg, br, c0, cc, j, h0, hc);
        }
        Tensor Out(Tensor g) => (g.dtype == q.dtype ? g : g.to_type(q.dtype)).MoveToOuterDisposeScope();
        return (Out(dq), Out(dk), Out(dv));
    }

    /// <summary>
    /// What keeping each branch's block results costs and saves, for q of shape [B, L, H, d]: the elements (of the
    /// accumulation type) its blocks' outputs and lses take as <see cref="ActivationArena.Footprint"/> counts them -
    /// exactly what <see cref="Saved.Add"/> takes from an arena - and the keys each of its query rows attends to, which is
    /// what recomputing one kept element would cost in multiply-adds (per head dimension).
    /// </summary>
    public static IReadOnlyList<BranchRecord> BranchRecords(long batch, long length, long heads, long headDim, IReadOnlyList<int> segmentLengths,
        IReadOnlyList<int> ratios, AttentionBlocking blocking)
    {
        var branches = Branches(segmentLengths, ratios, length, heads);
        var elements = new long[branches.Count];
        foreach (var (b, br, _, cc, _, _, hc) in Blocks(branches, blocking, headDim))
            elements[b] += ActivationArena.Footprint(batch * cc * hc, br.Tokens, headDim) + ActivationArena.Footprint(batch * cc * hc, br.Tokens);
        return branches.Select((br, b) => new BranchRecord(b, elements[b], br.Tokens)).ToList();
    }

    /// <summary>One branch's entry in <see cref="BranchRecords"/>.</summary>
    /// <param name="Branch">Index into the configuration's segment lengths and ratios.</param>
    /// <param name="Elements">Elements its kept block results take.</param>
    /// <param name="KeysPerRow">Keys each query row of the branch attends to (its gathered segment length).</param>
    internal readonly record struct BranchRecord(int Branch, long Elements, long KeysPerRow);

    /// <summary>
    /// The block results <see cref="Forward(Tensor, Tensor, Tensor, IReadOnlyList{int}, IReadOnlyList{int}, AttentionBlocking, Saved, Combination)"/>
    /// keeps (for a checkpointed layer's re-run, and for <see cref="Backward"/>); owns its tensors.
    /// </summary>
    /// <param name="arena">Where kept results are copied (a checkpointed training forward's); null: kept as made.</param>
    /// <param name="keepBranch">Which branches' blocks to keep (null: all).</param>
    internal sealed class Saved(ActivationArena? arena = null, Func<int, bool>? keepBranch = null) : IDisposable
    {
        private readonly List<(Tensor Out, Tensor Lse)?> _blocks = [];
        private Func<int, bool>? _keepBranch = keepBranch;
        private ActivationArena? _arena = arena;

        /// <summary>Whether blocks of branch <paramref name="branch"/> are kept when computed.</summary>
        public bool Keeps(int branch) => _keepBranch?.Invoke(branch) ?? true;

        /// <summary>
        /// From now on every block computed is kept, as a tensor of its own: what a re-run must do so that the
        /// backward finds all of them.
        /// </summary>
        public void KeepEverything() => (_keepBranch, _arena) = (null, null);

        /// <summary>Block <paramref name="index"/>'s output and lse, if kept.</summary>
        public (Tensor Out, Tensor Lse)? Block(int index) => index < _blocks.Count ? _blocks[index] : null;

        /// <summary>Keeps block <paramref name="index"/>'s results (made in the kernel's dispose scope): copies in the arena, or the tensors themselves.</summary>
        public void Add(int index, Tensor output, Tensor lse)
        {
            if (Block(index) is not null) return;
            while (_blocks.Count <= index) _blocks.Add(null);
            _blocks[index] = (Hold(output), Hold(lse));
        }

        /// <summary>
        /// The combination's final max and denominator per row and head (replacing earlier ones), for the backward: only
        /// a record that keeps every branch holds them, since a re-run recomputes them anyway.
        /// </summary>
        public void SetCombination(Tensor max, Tensor denominator)
        {
            if (_keepBranch is not null) return;
            Max?.Dispose();
            Denominator?.Dispose();
            Max = max.DetachFromDisposeScope();
            Denominator = denominator.DetachFromDisposeScope();
        }

        private Tensor Hold(Tensor t) => (_arena is null ? t : _arena.Keep(t)).DetachFromDisposeScope();

        public Tensor? Max { get; private set; }
        public Tensor? Denominator { get; private set; }

        public void Dispose()
        {
            foreach (var block in _blocks)
            {
                block?.Out.Dispose();
                block?.Lse.Dispose();
            }
            _blocks.Clear();
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
    /// The blocks both passes visit, in the same order: per branch (index b), chunks of whole segments [c0, c0+cc)
    /// bounded by <see cref="AttentionBlocking.GatherElements"/>, then head group j (heads [h0, h0+hc)).
    /// </summary>
    private static IEnumerable<(int B, Branch Br, long C0, long Cc, long J, long H0, long Hc)> Blocks(List<Branch> branches, AttentionBlocking blocking, long headDim)
    {
        for (int b = 0; b < branches.Count; b++)
        {
            var br = branches[b];
            long heads = br.Heads;
            long perSegment = br.Tokens * br.HeadsPerGroup * headDim;
            long chunk = Math.Clamp(blocking.GatherElements / Math.Max(1, perSegment), 1, br.SegmentsUsed);
            for (long c0 = 0; c0 < br.SegmentsUsed; c0 += chunk)
            {
                long cc = Math.Min(chunk, br.SegmentsUsed - c0);
                for (long j = 0; j < br.GroupsUsed; j++)
                {
                    long h0 = j * br.HeadsPerGroup;
                    yield return (b, br, c0, cc, j, h0, Math.Min(br.HeadsPerGroup, heads - h0));
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

    /// <summary>
    /// Per gathered entry ([B, cc, hc] flattened) of head group j of segments [c0, c0+cc): how many leading rows are
    /// real keys (the rest are the zero padding of a short last segment or of g > s, see <see cref="SparseRows"/>), and
    /// how many leading query rows land before row L of the combination, so have a gradient (the rest are cut away).
    /// In the backward, the branch with s = 32768 at 50k tiles has a second segment that is half padding: skipping it
    /// saves about a third of that branch's work.
    /// </summary>
    private static (long[] Keys, long[] Queries) LiveRows(Branch br, long c0, long cc, long j, long hc, long batch, long length)
    {
        var keys = new long[batch * cc * hc];
        var queries = new long[batch * cc * hc];
        for (long ci = 0; ci < cc; ci++)
        {
            long c = c0 + ci;
            long real = Math.Min(br.Segment, length - c * br.Segment);
            long realKeys = RowsOfGroup(real, j, br.Ratio);
            long liveQueries = Math.Min(br.Tokens, RowsOfGroup(length - c * br.Padded, j, br.Ratio));
            for (long b = 0; b < batch; b++)
            {
                for (long h = 0; h < hc; h++)
                {
                    long entry = (b * cc + ci) * hc + h;
                    keys[entry] = realKeys;
                    queries[entry] = liveQueries;
                }
            }
        }
        return (keys, queries);
    }

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
            long count = RowsOfGroup(s, j, r);
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
                long count = RowsOfGroup(real, j, r);
                var rowsOfGroup = x.narrow(1, start, real).slice(1, j, real, r).narrow(2, h0, hc).permute(0, 2, 1, 3);
                yield return (rowsOfGroup, buffer.select(1, full).narrow(2, 0, count));
            }
        }
    }

    /// <summary>How many of rows [0, <paramref name="rows"/>) head group j reads: rows j, j+r, … (none when rows ≤ j).</summary>
    private static long RowsOfGroup(long rows, long j, long r) => rows > j ? (rows - j + r - 1) / r : 0;

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
