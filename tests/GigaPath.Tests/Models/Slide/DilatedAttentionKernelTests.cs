using GigaPath.Models.Slide;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Slide;

/// <summary>
/// The blocked, streamed kernel against a plain float64 reference written straight from docs/slide-encoder.md §5:
/// explicit token lists per (branch, segment, head), full softmax, dense scatter, naive softmax-of-lse combine.
/// </summary>
public class DilatedAttentionKernelTests
{
    private static readonly AttentionBlocking Tiny = new() { QueryBlock = 3, KeyBlock = 4, ScoreElements = 40, GatherElements = 64 };
    private static readonly AttentionBlocking OneBlock = new() { QueryBlock = 4096, KeyBlock = 4096 };

    // (tokens L, heads, head dim, segments, ratios)
    private static IEnumerable<TestCaseData> Cases()
    {
        object[][] raw =
        [
            [151, 4, 8, new[] { 16, 32, 64 }, new[] { 1, 2, 4 }],        // the tiny fixture's geometry
            [30, 4, 8, new[] { 16, 32, 64 }, new[] { 1, 2, 4 }],         // L < segment for two branches
            [151, 4, 8, new[] { 16, 22, 46 }, new[] { 1, 4, 4 }],        // misaligned: 22 % 4, 46 % 4 != 0
            [50, 6, 4, new[] { 8, 12, 50 }, new[] { 1, 4, 4 }],          // H = 6, r = 4: offset 3 has no head
            [37, 5, 4, new[] { 7, 9, 64 }, new[] { 1, 3, 2 }],           // H = 5 with r = 3 and 2; misaligned 7/9
            [41, 3, 6, new[] { 5, 6, 100 }, new[] { 1, 2, 8 }],          // r = 8 > H = 3; one segment of 41
            [64, 2, 8, new[] { 64 }, new[] { 1 }],                       // one dense branch, one segment exactly L
            [29, 4, 4, new[] { 3, 5 }, new[] { 4, 2 }],                  // s < r: single-key groups; no r = 1 branch
            [2, 4, 4, new[] { 1024, 5792 }, new[] { 1, 2 }],             // the shortest slide: one tile + cls
            [90, 16, 3, new[] { 16, 23, 40, 70, 90 }, new[] { 1, 2, 4, 8, 16 }], // production ratios on 16 heads
        ];
        foreach (var r in raw)
        {
            var name = $"L{r[0]} H{r[1]} s[{string.Join(",", (int[])r[3])}] r[{string.Join(",", (int[])r[4])}]";
            yield return new TestCaseData(r).SetName($"MatchesDenseReference({name})");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesDenseReference(int length, int heads, int headDim, int[] segments, int[] ratios)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(1234);
        var q = randn([2, length, heads, headDim], generator: gen) * 1.5;
        var k = randn([2, length, heads, headDim], generator: gen) * 1.5;
        var v = randn([2, length, heads, headDim], generator: gen);
        // Zero queries and keys give logits of exactly 0, so single-key groups hit the reference's "lse == 0" rule.
        q[0, Math.Min(3, length - 1)].zero_();
        k[1, 0].zero_();

        var expected = DenseReference(q.to_type(ScalarType.Float64), k.to_type(ScalarType.Float64), v.to_type(ScalarType.Float64), segments, ratios);
        foreach (var blocking in new[] { Tiny, OneBlock, AttentionBlocking.Default })
        {
            var actual = DilatedAttentionKernel.Forward(q, k, v, segments, ratios, blocking);
            double diff = (actual.to_type(ScalarType.Float64) - expected).abs().max().item<double>();
            TestContext.Out.WriteLine($"blocks q{blocking.QueryBlock}/k{blocking.KeyBlock}/gather {blocking.GatherElements}: max |diff| {diff:E2}");
            Assert.That(diff, Is.Not.NaN.And.LessThan(2e-5), $"blocking {blocking}");
        }
    }

    [TestCase(1, 1, 1)]
    [TestCase(7, 3, 2)]
    [TestCase(33, 8, 5)]
    [TestCase(100, 100, 100)]
    [TestCase(100, 17, 1)]
    public void BlockAttentionMatchesFullSoftmax(int m, int queryBlock, int keyBlock)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(99);
        var q = randn([3, m, 8], generator: gen) * 2;
        var k = randn([3, m, 8], generator: gen) * 2;
        var v = randn([3, m, 8], generator: gen);
        double scale = 1 / Math.Sqrt(8);
        var blocking = new AttentionBlocking { QueryBlock = queryBlock, KeyBlock = keyBlock, ScoreElements = 16 };
        var (o, lse) = BlockAttention.Attend(q, k, v, scale, blocking);

        var s = matmul(q.to_type(ScalarType.Float64), k.to_type(ScalarType.Float64).transpose(1, 2)) * scale;
        var expectedLse = s.logsumexp(-1, false);
        var expectedOut = matmul(s.softmax(-1), v.to_type(ScalarType.Float64));
        Assert.That((o.to_type(ScalarType.Float64) - expectedOut).abs().max().item<double>(), Is.Not.NaN.And.LessThan(1e-5));
        Assert.That((lse.to_type(ScalarType.Float64) - expectedLse).abs().max().item<double>(), Is.Not.NaN.And.LessThan(1e-5));
    }

    [Test]
    public void ReducedPrecisionInputsStayClose()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(5);
        var q = randn([1, 200, 4, 16], generator: gen);
        var k = randn([1, 200, 4, 16], generator: gen);
        var v = randn([1, 200, 4, 16], generator: gen);
        int[] segments = [16, 64, 256];
        int[] ratios = [1, 2, 4];
        var full = DilatedAttentionKernel.Forward(q, k, v, segments, ratios, Tiny);
        var half = DilatedAttentionKernel.Forward(q.to_type(ScalarType.BFloat16), k.to_type(ScalarType.BFloat16),
            v.to_type(ScalarType.BFloat16), segments, ratios, Tiny);
        Assert.That(half.dtype, Is.EqualTo(ScalarType.Float32));
        Assert.That((half - full).abs().max().item<float>(), Is.Not.NaN.And.LessThan(0.05));
    }

    /// <summary>docs/slide-encoder.md §5 steps 1-7, literally, in float64.</summary>
    internal static Tensor DenseReference(Tensor q, Tensor k, Tensor v, int[] segments, int[] ratios)
    {
        long batch = q.shape[0], length = q.shape[1], heads = q.shape[2], d = q.shape[3];
        double scale = 1 / Math.Sqrt(d);
        // Row `length` is an all-zero row: the reference's zero padding.
        Tensor Padded(Tensor x) => cat([x, zeros(batch, 1, heads, d, ScalarType.Float64)], 1);
        var qp = Padded(q);
        var kp = Padded(k);
        var vp = Padded(v);
        var outs = new List<Tensor>();
        var lses = new List<Tensor>();
        for (int b = 0; b < segments.Length; b++)
        {
            long s = Math.Min(segments[b], length);
            long r = ratios[b];
            long n = (length + s - 1) / s;
            long g = (s + r - 1) / r * r;
            long hg = (heads + r - 1) / r;
            var dense = zeros(batch, n * g, heads, d, ScalarType.Float64);
            var denseLse = full(new long[] { batch, n * g, heads }, -1e8, ScalarType.Float64);
            for (long seg = 0; seg < n; seg++)
            {
                for (long h = 0; h < heads; h++)
                {
                    long j = h / hg;
                    var inSegment = new List<long>();
                    var rows = new List<long>();
                    for (long t = j; t < g; t += r)
                    {
                        long token = seg * s + t;
                        inSegment.Add(t);
                        rows.Add(t < s && token < length ? token : length);
                    }
                    var index = tensor(rows.ToArray());
                    var qs = qp.select(2, h).index_select(1, index);
                    var ks = kp.select(2, h).index_select(1, index);
                    var vs = vp.select(2, h).index_select(1, index);
                    var scores = matmul(qs, ks.transpose(1, 2)) * scale;
                    var lse = scores.logsumexp(-1, false);
                    var o = matmul(scores.softmax(-1), vs);
                    lse = lse.masked_fill(lse.eq(0), -1e8);
                    for (int p = 0; p < inSegment.Count; p++)
                    {
                        long row = seg * g + inSegment[p];
                        dense.select(1, row).select(1, h).copy_(o.select(1, p));
                        denseLse.select(1, row).select(1, h).copy_(lse.select(1, p));
                    }
                }
            }
            outs.Add(dense.narrow(1, 0, length));
            lses.Add(denseLse.narrow(1, 0, length));
        }
        var allLse = stack(lses, 0);
        var weights = (allLse - allLse.amax([0], keepdim: true)).exp();
        weights /= weights.sum(0, keepdim: true);
        var result = zeros_like(outs[0]);
        for (int b = 0; b < outs.Count; b++)
            result += outs[b] * weights[b].unsqueeze(-1);
        return result;
    }
}
