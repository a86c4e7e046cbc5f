using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>
/// Block sizes of the attention kernel. Scores are computed for at most <see cref="QueryBlock"/> queries against
/// <see cref="KeyBlock"/> keys at a time; a set of keys longer than one block is streamed with an online softmax
/// (running max and sum), so no [segment × segment] matrix of a long branch is ever materialised.
/// </summary>
public sealed record AttentionBlocking
{
    /// <summary>Queries processed together per attention block (memory/speed only).</summary>
    public int QueryBlock { get; init; } = 1024;
    /// <summary>Keys processed together per attention block; longer key sets are streamed with an online softmax.</summary>
    public int KeyBlock { get; init; } = 1024;
    /// <summary>
    /// Upper bound on score elements held at once (batch × query block × key block). 1M (4 MB, within reach of the
    /// CPU's caches between the score GEMM, the softmax and the value GEMM) measured faster on CPU than 4M or 16M.
    /// </summary>
    public long ScoreElements { get; init; } = 1L << 20;
    /// <summary>
    /// Upper bound on the elements of one gathered q/k/v buffer (segments × heads × tokens × head_dim). 2M (8 MB): a
    /// block's short-lived buffers (gathered q, k, v, its output and the weighted output) are recycled by malloc's heap
    /// block after block, and the heap they leave behind grows with their size - measured at 40k tiles, the inference
    /// forward's heap peaked 90-340 MB higher with 32 MB buffers than with 8 MB ones (and a training step's at 10k tiles
    /// 0.4-0.5 GB higher), for the same time.
    /// </summary>
    public long GatherElements { get; init; } = 1L << 21;

    /// <summary>Set from <see cref="SlideEncoderOptions.Attention"/>: run dense attention instead (benchmark baseline).</summary>
    internal bool DenseBaseline { get; init; }

    /// <summary>The measured defaults (1024 × 1024 blocks, 1M score elements, 2M gathered elements).</summary>
    public static AttentionBlocking Default { get; } = new();

    internal AttentionBlocking Validate()
    {
        if (QueryBlock <= 0 || KeyBlock <= 0 || ScoreElements <= 0 || GatherElements <= 0)
            throw new GigaPathException($"attention blocking: every block size must be positive ({this})");
        return this;
    }
}

/// <summary>
/// Exact softmax attention that also returns the natural-log log-sum-exp of every query row - what flash-attn's
/// kernel returns and what the dilated-attention branch combination needs (SDPA gives no lse).
/// </summary>
internal static class BlockAttention
{
    /// <summary>
    /// q, k, v: [batch, m, d] (any float dtype; matmuls run in it, softmax statistics in <see cref="AccumulationType"/>).
    /// Returns out [batch, m, d] = softmax(scale·q·kᵀ)·v and lse [batch, m] = ln Σ_k exp(scale·q·k), both in the
    /// accumulation type. No masking of any kind.
    /// </summary>
    public static (Tensor Out, Tensor Lse) Attend(Tensor q, Tensor k, Tensor v, double scale, AttentionBlocking blocking)
    {
        long batch = q.shape[0], m = q.shape[1], d = q.shape[2];
        var acc = AccumulationType(q.dtype);
        var output = torch.empty([batch, m, d], acc, q.device);
        var lse = torch.empty([batch, m], acc, q.device);
        var schedule = Schedule.Of(q, blocking);
        foreach (var block in schedule.QueryBlocks())
        {
            using var scope = torch.NewDisposeScope();
            var (kb, vb) = (block.Batches(k), block.Batches(v));
            var qb = block.Rows(q).mul(scale);
            var (o, l) = schedule.KeyBlock >= m ? OneBlock(qb, kb, vb) : Streamed(qb, kb, vb, schedule.KeyBlock);
            block.Rows(output).copy_(o);
            block.Rows(lse).copy_(l);
        }
        return (output, lse);
    }

    /// <summary>
    /// Every key fits in one block. libtorch's fused softmax makes one cache-friendly pass per row where separate
    /// max/subtract/exp/sum kernels would make four over the whole block; the row's lse follows from the softmax
    /// itself: at the row maximum p = exp(max - lse), so lse = max - ln p_max (p_max ≥ 1/keys, never underflows).
    /// </summary>
    private static (Tensor Out, Tensor Lse) OneBlock(Tensor qb, Tensor k, Tensor v)
    {
        var s = Scores(qb, k);
        var max = s.amax([-1], keepdim: true);
        var p = s.softmax(-1);
        s.Dispose();
        var lse = max.sub_(p.amax([-1], keepdim: true).log_());
        var o = Float(torch.matmul(p.to_type(v.dtype), v));
        return (o, lse.squeeze(-1));
    }

    /// <summary>
    /// Keys streamed in blocks (flash-attention style): each block is normalised on its own as in
    /// <see cref="OneBlock"/>, and blocks are merged by their log-sum-exps, so only running (output, lse) pairs are kept.
    /// </summary>
    private static (Tensor Out, Tensor Lse) Streamed(Tensor qb, Tensor k, Tensor v, long bk)
    {
        long nb = qb.shape[0], nq = qb.shape[1], d = v.shape[2], m = k.shape[1];
        var runLse = torch.full([nb, nq, 1], double.NegativeInfinity, AccumulationType(qb.dtype), qb.device);
        var acc = torch.zeros([nb, nq, d], AccumulationType(qb.dtype), qb.device);
        for (long j0 = 0; j0 < m; j0 += bk)
        {
            using var scope = torch.NewDisposeScope();
            long nk = Math.Min(bk, m - j0);
            var (o, lse) = OneBlock(qb, k.narrow(1, j0, nk), v.narrow(1, j0, nk));
            lse = lse.unsqueeze(-1);
            var newLse = torch.logaddexp(runLse, lse);
            acc.mul_(runLse.sub(newLse).exp_()).add_(o.mul_(lse.sub_(newLse).exp_()));
            runLse.copy_(newLse);
        }
        return (acc, runLse.squeeze(-1));
    }

    /// <summary>
    /// The gradients of <see cref="Attend"/> (FlashAttention's backward): scores are recomputed block by block from q, k
    /// and the saved per-row lse, P = exp(S - lse), and with D = rowsum(dO ∘ O): dV = Pᵀ dO, dS = P ∘ (dO Vᵀ - D),
    /// dQ = scale · dS K, dK = scale · dSᵀ Q. No score block larger than the forward's is ever held. q, k, v as in
    /// <see cref="Attend"/>; o, lse its outputs; dO [batch, m, d] the gradient of o. Writes dq, dk, dv
    /// ([batch, m, d], accumulation type, overwritten).
    /// <para>Optionally, per batch entry, how many leading rows are real keys (<paramref name="keys"/>; the rest are
    /// zero keys and values, whose dK and dV the caller discards) and how many leading query rows have a gradient
    /// (<paramref name="queries"/>; dO is zero after them). Scores beyond both are skipped: a zero key adds nothing to
    /// dQ, and a query row without gradient adds nothing to dK or dV (dS = P ∘ (dO Vᵀ - D) is zero there); its dQ is
    /// zero. Rows past a limit within a block shared with a longer entry are computed and give the same zeros.</para>
    /// </summary>
    public static void AttendBackward(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, Tensor dO, double scale,
        AttentionBlocking blocking, Tensor dq, Tensor dk, Tensor dv, long[]? keys = null, long[]? queries = null)
    {
        var compute = q.dtype;
        using var scope = torch.NewDisposeScope();
        var rowDot = dO.mul(o).sum([-1], keepdim: true);
        var dOc = dO.to_type(compute);
        dq.zero_();
        dk.zero_();
        dv.zero_();
        var schedule = Schedule.Of(q, blocking);
        foreach (var all in schedule.QueryBlocks())
        {
            long liveQueries = schedule.Limit(queries, all), realKeys = schedule.Limit(keys, all);
            if (all.I0 >= liveQueries || realKeys == 0) continue;
            var block = all with { Nq = Math.Min(all.Nq, liveQueries - all.I0) };
            using var inner = torch.NewDisposeScope();
            var (kb, vb, dkb, dvb) = (block.Batches(k), block.Batches(v), block.Batches(dk), block.Batches(dv));
            var qb = block.Rows(q).mul(scale);
            var dOb = block.Rows(dOc);
            var lseb = block.Rows(lse).unsqueeze(-1);
            var rowDotb = block.Rows(rowDot);
            var dqb = block.Rows(dq);
            for (long j0 = 0; j0 < realKeys; j0 += schedule.KeyBlock)
            {
                using var blockScope = torch.NewDisposeScope();
                long nk = Math.Min(schedule.KeyBlock, realKeys - j0);
                var kj = kb.narrow(1, j0, nk);
                var vj = vb.narrow(1, j0, nk);
                var p = Scores(qb, kj).sub_(lseb).exp_();
                dvb.narrow(1, j0, nk).add_(Float(torch.matmul(p.to_type(compute).transpose(1, 2), dOb), dv.dtype));
                var dS = p.mul_(Float(torch.matmul(dOb, vj.transpose(1, 2)), p.dtype).sub_(rowDotb)).to_type(compute);
                dqb.add_(Float(torch.matmul(dS, kj), dq.dtype));
                // qb carries the scale already: dSᵀ·(scale·q) is dK.
                dkb.narrow(1, j0, nk).add_(Float(torch.matmul(dS.transpose(1, 2), qb), dk.dtype));
            }
            dqb.mul_(scale);
        }
    }

    /// <summary>
    /// The blocks both passes visit over [batch, m, ·] inputs: groups of <see cref="BatchBlock"/> batch entries, and
    /// within them query rows in blocks of <see cref="QueryBlock"/>; keys are taken <see cref="KeyBlock"/> at a time.
    /// </summary>
    private readonly record struct Schedule(long Batch, long Length, long BatchBlock, long QueryBlock, long KeyBlock)
    {
        public static Schedule Of(Tensor q, AttentionBlocking blocking)
        {
            long batch = q.shape[0], m = q.shape[1];
            long bq = Math.Min(m, blocking.QueryBlock);
            long bk = Math.Min(m, blocking.KeyBlock);
            return new Schedule(batch, m, Math.Clamp(blocking.ScoreElements / (bq * bk), 1, batch), bq, bk);
        }

        /// <summary>The largest of <paramref name="rows"/> (per batch entry; null: all rows) over the block's entries.</summary>
        public long Limit(long[]? rows, QueryRows block)
        {
            if (rows is null) return Length;
            long limit = 0;
            for (long b = block.B0; b < block.B0 + block.Nb; b++) limit = Math.Max(limit, rows[b]);
            return Math.Min(limit, Length);
        }

        public IEnumerable<QueryRows> QueryBlocks()
        {
            for (long b0 = 0; b0 < Batch; b0 += BatchBlock)
                for (long i0 = 0; i0 < Length; i0 += QueryBlock)
                    yield return new QueryRows(b0, Math.Min(BatchBlock, Batch - b0), i0, Math.Min(QueryBlock, Length - i0));
        }
    }

    /// <summary>Batch entries [B0, B0+Nb) and query rows [I0, I0+Nq) of one block.</summary>
    private readonly record struct QueryRows(long B0, long Nb, long I0, long Nq)
    {
        /// <summary>The block's batch entries of x [batch, m, ·] (all rows).</summary>
        public Tensor Batches(Tensor x) => x.narrow(0, B0, Nb);

        /// <summary>The block's batch entries and query rows of x [batch, m, ·].</summary>
        public Tensor Rows(Tensor x) => x.narrow(0, B0, Nb).narrow(1, I0, Nq);
    }

    /// <summary>Softmax statistics and outputs: float64 for float64 inputs (exact checks), else float32.</summary>
    public static ScalarType AccumulationType(ScalarType input) => input == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    private static Tensor Scores(Tensor qb, Tensor kb) => Float(torch.matmul(qb, kb.transpose(1, 2)));

    private static Tensor Float(Tensor t) => Float(t, AccumulationType(t.dtype));

    private static Tensor Float(Tensor t, ScalarType type) => t.dtype == type ? t : t.to_type(type);
}
