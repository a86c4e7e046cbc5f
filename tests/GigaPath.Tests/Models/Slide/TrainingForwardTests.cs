using GigaPath.Models.Slide;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Slide;

/// <summary>
/// The encoder's autograd forward (<see cref="LongNetViT.HiddenStates"/>: out of place, differentiable attention,
/// optional layer checkpointing) computes the fixtures' numbers, and back-propagates to every parameter.
/// </summary>
public class TrainingForwardTests
{
    [TestCase("slide_encoder_tiny")]
    [TestCase("slide_encoder_tiny_short")]
    [TestCase("slide_encoder_tiny_misaligned")]
    [TestCase("slide_encoder_long")]
    public void EvaluationModeMatchesTheFixtures(string fixture)
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get(fixture, "model.safetensors"));
        using var input = SafeTensorsFile.Open(FixturePaths.Get(fixture, "input.safetensors"));
        using var expected = SafeTensorsFile.Open(FixturePaths.Get(fixture, "expected.safetensors"));
        using var scope = NewDisposeScope();
        var model = encoder.Model;
        // Gradients on, so the differentiable attention and the out-of-place layers are what is checked.
        foreach (var p in model.parameters()) p.requires_grad_(true);
        var states = States(model, input.Load("tile_embeddings")[0], input.Load("coords")[0], model.encoder.layers.Count);
        var actual = new Dictionary<string, Tensor>();
        for (int i = 0; i < states.Count; i++)
        {
            actual[$"layer_{i}"] = model.HeadCls(states[i]).detach();
            actual[$"layer_pool_{i}"] = model.HeadPooled(states[i]).detach();
            if (expected.Contains($"hidden_{i}")) actual[$"hidden_{i}"] = states[i].detach();
        }
        var report = SlideEncoderFixtureTests.Compare(expected, actual, actual.Keys.ToList());
        TestContext.Out.WriteLine($"{fixture}: {report.Count} tensors, max |diff| {report.Values.Max():E2}");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void GradientsReachEveryParameter(bool checkpoint)
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny", "model.safetensors"));
        using var input = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));
        using var scope = NewDisposeScope();
        using var model = WithDropout(encoder.Model, 0.25);
        model.Checkpoint = checkpoint ? Checkpointing.Always : Checkpointing.Never;
        model.train();
        manual_seed(5);
        var states = States(model, input.Load("tile_embeddings")[0], input.Load("coords")[0], model.encoder.layers.Count);
        var loss = model.HeadPooled(states[^1]).pow(2).sum() + model.HeadCls(states[1]).sum();
        loss.backward();
        var missing = model.named_parameters().Where(p => p.parameter.grad is null || p.parameter.grad.abs().sum().item<float>() == 0).Select(p => p.name).ToList();
        // The all-layer outputs skip encoder.layer_norm (LN_enc), in the reference's classification head too.
        Assert.That(missing, Is.EquivalentTo(new[] { "encoder.layer_norm.weight", "encoder.layer_norm.bias" }));
    }

    /// <summary>
    /// A checkpointed layer is re-run in the backward with the generator state of its first run: with dropout active,
    /// the gradients equal those of the plain autograd forward bit for bit in the masks (to float32 rounding) - also
    /// when the checkpointed FFN runs in row chunks (7 rows: several chunks and a short last one), which must slice the
    /// unchunked dropout mask rather than draw new ones.
    /// </summary>
    [TestCase(LongNetViT.RowsPerChunk)]
    [TestCase(7L)]
    public void CheckpointedLayersReplayTheirDropoutMasks(long ffnRows)
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny", "model.safetensors"));
        using var input = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));
        using var scope = NewDisposeScope();
        var x = input.Load("tile_embeddings")[0];
        var coords = input.Load("coords")[0];
        Dictionary<string, Tensor> Gradients(Checkpointing checkpoint)
        {
            using var model = WithDropout(encoder.Model, 0.3);
            model.Checkpoint = checkpoint;
            model.CheckpointFfnRows = ffnRows;
            model.train();
            manual_seed(11);
            var states = States(model, x, coords, model.encoder.layers.Count);
            (model.HeadPooled(states[^1]).pow(2).sum() + model.HeadCls(states[1]).sum()).backward();
            return model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        }
        var plain = Gradients(Checkpointing.Never);
        var checkpointed = Gradients(Checkpointing.Always);
        if (ffnRows < LongNetViT.RowsPerChunk)
        {
            long tokens = x.shape[0] + 1;
            Assert.That(tokens > 2 * ffnRows && tokens % ffnRows != 0, $"{tokens} tokens: several chunks and a short last one");
        }
        Assert.That(checkpointed.Keys, Is.EquivalentTo(plain.Keys));
        foreach (var (name, g) in plain)
        {
            double scale = g.abs().max().item<float>();
            double diff = (checkpointed[name] - g).abs().max().item<float>();
            Assert.That(diff, Is.LessThanOrEqualTo(1e-5 * scale + 1e-7), name);
        }
    }

    /// <summary>
    /// A checkpointed layer that feeds a head returns the head's row itself and adds that row's gradient to its output's
    /// gradient chunk by chunk (<see cref="LayerCheckpoint"/>), instead of autograd making a whole-state gradient from a
    /// select or a mean: the gradients are those of the select/mean on the checkpointed states bit for bit (the same
    /// additions), for the cls row and the tile mean, for a last layer read only by the head and for layers read by both
    /// the head and the next layer, with the FFN in several row chunks (7 rows) and dropout on; the features equal the
    /// plain autograd forward's. (Checkpointed against plain gradients: CheckpointedLayersReplayTheirDropoutMasks.)
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public void HeadFeaturesOfCheckpointedLayersGiveTheSelectGradients(bool pooled)
    {
        var summary = pooled ? StateSummary.MeanOfTiles : StateSummary.Cls;
        using var encoder = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny", "model.safetensors"));
        using var input = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));
        using var scope = NewDisposeScope();
        var x = input.Load("tile_embeddings")[0];
        var cells = SlidePositions.ToGridCells(input.Load("coords")[0], encoder.Config.TileSize, encoder.Config.PositionGridSize);
        int depth = encoder.Model.encoder.layers.Count;
        int[] layers = [0, 1, depth];
        (Dictionary<string, Tensor> Gradients, List<Tensor> Features) Run(Checkpointing checkpoint, bool viaStates)
        {
            using var model = WithDropout(encoder.Model, 0.3);
            model.Checkpoint = checkpoint;
            model.CheckpointFfnRows = 7;
            model.train();
            manual_seed(11);
            var h0 = model.Embed(x, cells, CPU);
            List<Tensor> features;
            if (viaStates)
            {
                var states = model.HiddenStates(h0, depth, AttentionBlocking.Default);
                features = layers.Select(i => pooled ? model.HeadPooled(states[i]) : model.HeadCls(states[i])).ToList();
            }
            else
            {
                features = model.HeadFeatures(h0, layers, summary, AttentionBlocking.Default);
            }
            // Different weights per layer, so that every state's gradient differs.
            features.Select((f, i) => f.pow(2).sum() * (i + 1) + f.sum()).Aggregate((a, b) => a + b).backward();
            var gradients = model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
            return (gradients, features.Select(f => f.detach().clone()).ToList());
        }
        var plain = Run(Checkpointing.Never, viaStates: false);
        var selected = Run(Checkpointing.Always, viaStates: true);
        var summarised = Run(Checkpointing.Always, viaStates: false);
        for (int i = 0; i < layers.Length; i++)
        {
            Assert.That(summarised.Features[i].sub(plain.Features[i]).abs().max().item<float>(), Is.LessThanOrEqualTo(Parity.Atol), $"features of state {layers[i]}");
            Assert.That(summarised.Features[i].equal(selected.Features[i]).all().item<bool>(), $"features of state {layers[i]}, checkpointed");
        }
        Assert.That(summarised.Gradients.Keys, Is.EquivalentTo(plain.Gradients.Keys));
        Assert.That(summarised.Gradients.Keys, Has.Member("encoder.layers.0.ffn.fc1.weight"));
        foreach (var (name, g) in selected.Gradients)
            Assert.That(summarised.Gradients[name].equal(g).all().item<bool>(), name);
    }

    /// <summary>
    /// What checkpointed layers keep of their attention only decides what the backward recomputes: a re-run combines
    /// kept and recomputed blocks in the first run's order with the same operations, so the gradients are the same bit
    /// for bit whether every branch of every layer is kept, none is, or a mix (some branches, some layers).
    /// </summary>
    [Test]
    public void KeptAttentionChangesNoGradientBit()
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny", "model.safetensors"));
        using var input = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));
        using var scope = NewDisposeScope();
        var x = input.Load("tile_embeddings")[0];
        var coords = input.Load("coords")[0];
        int layers = encoder.Model.encoder.layers.Count;
        var all = encoder.Model.KeptBranches(1, x.shape[0] + 1, layers, 4, AttentionBlocking.Default);
        Dictionary<string, Tensor> Gradients(long keptBytes, Action<IReadOnlySet<int>[]> checkPlan)
        {
            using var model = WithDropout(encoder.Model, 0.3);
            model.Checkpoint = Checkpointing.Always;
            model.KeptAttentionBytes = keptBytes;
            checkPlan(model.KeptBranches(1, x.shape[0] + 1, layers, 4, AttentionBlocking.Default).Kept);
            model.train();
            manual_seed(11);
            var states = States(model, x, coords, layers);
            (model.HeadPooled(states[^1]).pow(2).sum() + model.HeadCls(states[1]).sum()).backward();
            return model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        }
        int branches = encoder.Model.Config.DilationRatios.Count;
        Assert.That(branches, Is.GreaterThan(1), "the fixture must have several branches");
        var everything = Gradients(LongNetViT.DefaultKeptAttentionBytes,
            plan => Assert.That(plan.All(l => l.Count == branches), "every branch of every layer kept by default"));
        var nothing = Gradients(0, plan => Assert.That(plan.All(l => l.Count == 0), "nothing kept"));
        var mixed = Gradients(all.Elements * 4 / 2, plan => Assert.That(
            plan.Any(l => l.Count > 0 && l.Count < branches) || plan.Select(l => l.Count).Distinct().Count() > 1, "a mixed plan"));
        foreach (var (name, g) in everything)
        {
            Assert.That((nothing[name] - g).abs().max().item<float>(), Is.Zero, $"{name}: nothing kept");
            Assert.That((mixed[name] - g).abs().max().item<float>(), Is.Zero, $"{name}: some kept");
        }
    }

    /// <summary>
    /// The kept-attention plan takes branches by the keys their rows attend to (the work one kept element saves), each
    /// for as many layers as fit, and stays within the budget.
    /// </summary>
    [Test]
    public void KeptBranchesFollowTheWorkTheySave()
    {
        using var model = new LongNetViT(SlideEncoderConfig.ProvGigaPath);
        long length = 50_001;
        var records = DilatedAttentionKernel.BranchRecords(1, length, 16, 48, model.Config.SegmentLengths, model.Config.DilationRatios, AttentionBlocking.Default);
        var byWork = records.OrderByDescending(r => r.KeysPerRow).Select(r => r.Branch).ToList();
        Assert.That(byWork, Is.EqualTo(new[] { 2, 3, 4, 1, 0 }), "at 50k the r = 4, 8, 16 branches attend to the longest rows");
        var (kept, elements) = model.KeptBranches(1, length, 11, 4, AttentionBlocking.Default);
        Assert.That(elements * 4, Is.LessThanOrEqualTo(LongNetViT.DefaultKeptAttentionBytes));
        Assert.That(elements, Is.EqualTo(kept.Sum(l => l.Sum(b => records[b].Elements))));
        Assert.That(kept.All(l => l.IsSupersetOf([2, 3, 4])), "the long branches of every layer");
        Assert.That(kept.Count(l => l.Contains(1)), Is.InRange(1, 10), "the r = 2 branch where room is left");
        Assert.That(kept.Any(l => l.Contains(0)), Is.False, "no r = 1 branch at 50k");
        var (all10k, _) = model.KeptBranches(1, 10_001, 11, 4, AttentionBlocking.Default);
        Assert.That(all10k.All(l => l.Count == 5), "at 10k everything fits");
    }

    /// <summary>
    /// The inference forward (h updated in place; q, k, v and the attention's accumulator in one workspace reused by
    /// every layer; embedding, projections, out_proj and FFN in row chunks) and the autograd forward (whole tensors, out
    /// of place) give the same hidden states on a slide of several row chunks: the memory layout changes nothing but
    /// float32 rounding.
    /// </summary>
    [Test]
    public void InferenceForwardInRowChunksMatchesTheWholeTensorForward()
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get("slide_encoder_long", "model.safetensors"));
        using var input = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_long", "input.safetensors"));
        using var scope = NewDisposeScope();
        var model = encoder.Model;
        var x = input.Load("tile_embeddings")[0];
        var coords = input.Load("coords")[0];
        Assert.That(x.shape[0], Is.GreaterThan(2 * LongNetViT.RowsPerChunk), "the slide spans several row chunks");
        int layers = model.encoder.layers.Count;
        List<Tensor> whole;
        using (enable_grad())
        {
            foreach (var p in model.parameters()) p.requires_grad_(true);
            whole = States(model, x, coords, layers).Select(t => t.detach()).ToList();
            foreach (var p in model.parameters()) p.requires_grad_(false);
        }
        var chunked = new Dictionary<string, Tensor>();
        using (no_grad())
        {
            var cells = SlidePositions.ToGridCells(coords, model.Config.TileSize, model.Config.PositionGridSize);
            var h = model.Embed(x, cells, CPU);
            model.Forward(h, false, AttentionBlocking.Default, (name, t) => { if (name.StartsWith("hidden_", StringComparison.Ordinal)) chunked[name] = t.clone().DetachFromDisposeScope(); });
        }
        Assert.That(chunked.Keys, Has.Count.EqualTo(layers + 1));
        double worst = 0;
        for (int i = 0; i <= layers; i++)
            worst = Math.Max(worst, chunked[$"hidden_{i}"].sub(whole[i]).abs().max().item<float>());
        foreach (var t in chunked.Values) t.Dispose();
        TestContext.Out.WriteLine($"max |chunked - whole| over {layers + 1} hidden states: {worst:E2}");
        Assert.That(worst, Is.LessThanOrEqualTo(Parity.Atol));
    }

    private static List<Tensor> States(LongNetViT model, Tensor x, Tensor coords, int layers)
    {
        var cells = SlidePositions.ToGridCells(coords, model.Config.TileSize, model.Config.PositionGridSize);
        return model.HiddenStates(model.Embed(x, cells, CPU), layers, AttentionBlocking.Default);
    }

    private static LongNetViT WithDropout(LongNetViT source, double dropout)
    {
        var model = new LongNetViT(source.Config, dropout);
        using var _ = no_grad();
        var weights = source.state_dict();
        foreach (var (name, t) in model.state_dict()) t.copy_(weights[name]);
        foreach (var p in model.parameters()) p.requires_grad_(true);
        return model;
    }
}
