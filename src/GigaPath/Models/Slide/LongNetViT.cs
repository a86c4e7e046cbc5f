using GigaPath.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

#pragma warning disable IDE1006 // field names are the checkpoint's keys

/// <summary><c>patch_embed</c>: the tile-embedding projection <c>proj</c> (its norm is Identity).</summary>
internal sealed class PatchEmbed : nn.Module
{
    public readonly Linear proj;

    public PatchEmbed(SlideEncoderConfig config) : base("PatchEmbed")
    {
        proj = nn.Linear(config.InputChannels, config.EmbedDim);
        RegisterComponents();
    }
}

/// <summary>Whether the training forward checkpoints its layers.</summary>
internal enum Checkpointing
{
    /// <summary>When the saved activations would exceed <see cref="LongNetViT.CheckpointThresholdBytes"/>.</summary>
    Auto,
    Always,
    Never,
}

/// <summary>
/// Which row a classification head reads from a hidden state [B, L, D] (before the output LayerNorm): the cls row, or
/// the mean of the tile rows (global pooling).
/// </summary>
internal enum StateSummary
{
    /// <summary>No summary.</summary>
    None,
    /// <summary>state[:, 0].</summary>
    Cls,
    /// <summary>state[:, 1:].mean(1).</summary>
    MeanOfTiles,
}

/// <summary>
/// The training forward's results: the states h_0..h_K and, for the states a caller asked to summarise, their summary
/// rows [B, D] (null elsewhere).
/// </summary>
internal sealed record TrainingStates(List<Tensor> States, Tensor?[] Summaries);

/// <summary>What one forward pass produces, all on the model's device.</summary>
internal sealed record LongNetOutputs(Tensor EncoderOut, List<Tensor>? LayerCls, List<Tensor>? LayerPooled);

/// <summary>
/// The slide encoder module tree with the checkpoint's names (<c>cls_token</c>, <c>patch_embed.proj</c>,
/// <c>encoder.layers.{i}.…</c>, <c>encoder.layer_norm</c>, <c>norm</c>). The reference's 1,000,001-row
/// <c>pos_embed</c> is a non-persistent buffer there; here rows are computed per slide by <see cref="SlidePositions"/>.
/// </summary>
internal sealed class LongNetViT : nn.Module
{
    public readonly Parameter cls_token;
    public readonly PatchEmbed patch_embed;
    public readonly LongNetEncoder encoder;
    public readonly LayerNorm norm;

    public SlideEncoderConfig Config { get; }

    /// <summary>
    /// When the training forward keeps only each layer's input and recomputes the layer in the backward
    /// (<see cref="LayerCheckpoint"/>): <see cref="Checkpointing.Auto"/> does so once the activations autograd would
    /// otherwise hold exceed <see cref="CheckpointThresholdBytes"/>.
    /// </summary>
    public Checkpointing Checkpoint { get; set; } = Checkpointing.Auto;

    /// <summary>Above this estimate of all layers' saved activations, Auto checkpoints every layer.</summary>
    public const long CheckpointThresholdBytes = 2L << 30;

    /// <summary>
    /// Checkpointed layers keep attention results (so the backward does not recompute that attention) up to this
    /// size in all (see <see cref="KeptBranches"/>): every branch of every layer at 10k tiles; at 50k the long
    /// dilated branches of every layer and the rest where room is left. Tests change it to exercise partial keeping.
    /// </summary>
    internal long KeptAttentionBytes { get; set; } = DefaultKeptAttentionBytes;

    /// <summary>The default of <see cref="KeptAttentionBytes"/>: 1 GiB.</summary>
    internal const long DefaultKeptAttentionBytes = 1L << 30;

    /// <summary>
    /// Tokens per FFN chunk in checkpointed layers: 1024 rows make 12 MB F-wide intermediates at 768-d, small enough
    /// for the fragmented heap of a training step to reuse its holes (4096-row chunks, 50 MB each, grew the heap by
    /// ~0.4 GB more at 10k tiles for the same step time). Tests make it small to exercise several chunks.
    /// </summary>
    internal long CheckpointFfnRows { get; set; } = 1024;

    /// <param name="config">The architecture.</param>
    /// <param name="dropout">The reference's <c>dropout</c> (embedding, attention output, FFN output); acts in training mode only.</param>
    public LongNetViT(SlideEncoderConfig config, double dropout = 0) : base("LongNetViT")
    {
        Config = config;
        cls_token = new Parameter(torch.zeros(1, 1, config.EmbedDim));
        patch_embed = new PatchEmbed(config);
        encoder = new LongNetEncoder(config, dropout);
        norm = nn.LayerNorm(config.EmbedDim, config.OuterNormEps);
        RegisterComponents();
    }

    /// <summary>Tokens per chunk of the inference paths that run row by row (embedding, projections, FFN).</summary>
    internal const long RowsPerChunk = 2048;

    /// <summary>
    /// h_0 = dropout([cls_token; patch_embed(x) + positions]) as [1, N+1, D] float32 on <paramref name="device"/>, from
    /// validated tile embeddings [N, in_chans] and their grid cells. Without autograd (inference) h_0 is one tensor of
    /// its own (<see cref="SlideWorkspace"/>) filled <see cref="RowsPerChunk"/> rows at a time, so neither a copy of the
    /// input nor the positions nor the projection ever exist for the whole slide at once.
    /// </summary>
    public Tensor Embed(Tensor embeddings, GridCells cells, Device device)
    {
        using var scope = torch.NewDisposeScope();
        long n = embeddings.shape[0], d = Config.EmbedDim;
        var autograd = torch.is_grad_enabled();
        var h = autograd ? null : MappedTensors.Empty([1, n + 1, d], ScalarType.Float32, device);
        var chunks = new List<Tensor>();
        for (long r0 = 0; r0 < n; r0 += autograd ? n : RowsPerChunk)
        {
            long rows = Math.Min(autograd ? n : RowsPerChunk, n - r0);
            using var inner = torch.NewDisposeScope();
            var positions = SlidePositions.SinCosRows(cells.Gx.AsSpan((int)r0, (int)rows), cells.Gy.AsSpan((int)r0, (int)rows), Config.EmbedDim).to(device);
            // A tensor from libtorch's allocator: a tensor wrapping a .NET array is only 8-byte aligned, and MKL's GEMM
            // then rounds some rows differently depending on where the array happens to lie in memory, so the same slide
            // would not give the same bytes twice. The autograd path keeps this input until the backward (the projection's
            // weight gradient needs it: 6 KB per tile for 1536-wide features), so it takes the caller's tensor where that
            // already is one rather than keep a copy beside it.
            var x = autograd && IsAlignedFloat32(embeddings, device)
                ? embeddings.unsqueeze(0)
                : embeddings.narrow(0, r0, rows).to(ScalarType.Float32, device, copy: true).unsqueeze(0);
            var tiles = Projection.Apply(patch_embed.proj, x);
            x.Dispose();
            tiles.add_(positions.unsqueeze(0));
            if (h is null) chunks.Add(tiles.MoveToOuterDisposeScope());
            else h.narrow(1, 1 + r0, rows).copy_(tiles);
        }
        // The cls row of the reference's table is all zeros, so the cls token enters unchanged.
        var cls = cls_token.expand(1, 1, Config.EmbedDim).to_type(ScalarType.Float32);
        if (h is not null)
        {
            h.narrow(1, 0, 1).copy_(cls);
            return encoder.dropout_module.forward(h).MoveToOuterDisposeScope();
        }
        return encoder.dropout_module.forward(torch.cat([cls, .. chunks], 1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Whether <paramref name="x"/> is contiguous float32 on <paramref name="device"/> starting on a 64-byte boundary, as
    /// libtorch's allocator makes them (the layout under which the projection gives the same bytes every time).
    /// </summary>
    private static bool IsAlignedFloat32(Tensor x, Device device)
    {
        if (x.dtype != ScalarType.Float32 || x.device.type != device.type || x.device.index != device.index || !x.is_contiguous()) return false;
        using var storage = x.storage<float>();
        return (storage.data_ptr() + x.storage_offset() * sizeof(float)) % 64 == 0;
    }

    /// <summary>
    /// Inference: runs the encoder on h_0 in place (the caller hands it over), no autograd. With
    /// <paramref name="allLayers"/> the cls and mean-pooled heads of every raw state h_0..h_K are returned too.
    /// <paramref name="cancellation"/> is checked before every layer (a full-size layer at 100k tiles is ~1/12 of it).
    /// </summary>
    public LongNetOutputs Forward(Tensor h, bool allLayers, AttentionBlocking blocking, ActivationSink? sink, CancellationToken cancellation = default)
    {
        using var scope = torch.NewDisposeScope();
        List<Tensor>? cls = allLayers ? [] : null;
        List<Tensor>? pooled = allLayers ? [] : null;
        void Record(int i)
        {
            sink?.Invoke($"hidden_{i}", h);
            if (!allLayers) return;
            cls!.Add(HeadCls(h).MoveToOuterDisposeScope());
            pooled!.Add(HeadPooled(h).MoveToOuterDisposeScope());
        }

        Record(0);
        using (var workspace = SlideWorkspace.Allocate(Config, h.shape[0], h.shape[1], ProjectionDType, h.device))
        {
            for (int i = 0; i < encoder.layers.Count; i++)
            {
                cancellation.ThrowIfCancellationRequested();
                encoder.layers[i].Forward(h, blocking, sink, i, workspace);
                Record(i + 1);
            }
        }
        var encoderOut = encoder.layer_norm.forward(h);
        return new LongNetOutputs(encoderOut.MoveToOuterDisposeScope(), cls, pooled);
    }

    /// <summary>
    /// Training (or any forward autograd must follow, in either mode): the raw states h_0..h_<paramref name="layers"/>
    /// ([1, N+1, D] float32 each, new tensors) through the same layers as <see cref="Forward"/>, dropout following
    /// train()/eval(). Layers past the last state a caller needs are not run. Attention is differentiated blockwise;
    /// layers are checkpointed as <see cref="Checkpoint"/> says.
    /// </summary>
    public List<Tensor> HiddenStates(Tensor h0, int layers, AttentionBlocking blocking) => Train(h0, layers, blocking, StateSummary.None, new HashSet<int>()).States;

    /// <summary>
    /// The head inputs of a classification head: for each state index in <paramref name="layers"/>, LN_out of that
    /// state's <paramref name="summary"/> row ([B, D] each; <see cref="HeadCls"/> or <see cref="HeadPooled"/> of the
    /// state), through the training forward (<see cref="HiddenStates"/>). A checkpointed layer returns the row itself, so
    /// its gradient reaches the layer as one row rather than as a whole state (see <see cref="LayerCheckpoint"/>).
    /// </summary>
    public List<Tensor> HeadFeatures(Tensor h0, IReadOnlyList<int> layers, StateSummary summary, AttentionBlocking blocking)
    {
        if (summary == StateSummary.None) throw new ArgumentException("a head reads the cls row or the tile mean", nameof(summary));
        var run = Train(h0, layers.Max(), blocking, summary, layers.ToHashSet());
        return layers.Select(i => norm.forward(run.Summaries[i] ?? Summarize(run.States[i], summary))).ToList();
    }

    /// <summary>The one training forward behind <see cref="HiddenStates"/> and <see cref="HeadFeatures"/>.</summary>
    private TrainingStates Train(Tensor h0, int layers, AttentionBlocking blocking, StateSummary summary, IReadOnlySet<int> summarized)
    {
        if (layers < 0 || layers > encoder.layers.Count)
            throw new ArgumentOutOfRangeException(nameof(layers), $"the encoder has {encoder.layers.Count} layers");
        bool checkpoint = torch.is_grad_enabled() && h0.requires_grad && Checkpoint switch
        {
            Checkpointing.Always => true,
            Checkpointing.Never => false,
            _ => ActivationBytes(h0.shape[1], layers) > CheckpointThresholdBytes,
        };
        var states = new List<Tensor> { h0 };
        var summaries = new Tensor?[layers + 1];
        var h = h0;
        if (!checkpoint)
        {
            // Evaluation without autograd (validation, prediction): the inference layer on a copy of each state, so
            // the FFN runs in row chunks as in Forward; otherwise every step out of place, visible to autograd.
            bool inference = !training && !torch.is_grad_enabled();
            using var workspace = inference && layers > 0 ? SlideWorkspace.Allocate(Config, h0.shape[0], h0.shape[1], ProjectionDType, h0.device) : null;
            for (int i = 0; i < layers; i++)
                states.Add(h = encoder.layers[i].Forward(inference ? h.clone() : h, blocking, null, i, workspace));
            return new TrainingStates(states, summaries);
        }
        var (kept, keptElements) = KeptBranches(h0.shape[0], h0.shape[1], layers, h0.ElementSize, blocking);
        // What the layers keep until the backward, in one block: their outputs and the kept attention results.
        using var arena = new ActivationArena(layers * ActivationArena.Footprint(h0.shape) + keptElements, h0.dtype, h0.device);
        for (int i = 0; i < layers; i++)
        {
            (h, summaries[i + 1]) = LayerCheckpoint.Apply(encoder.layers[i], h, blocking, i, kept[i], CheckpointFfnRows, arena,
                summarized.Contains(i + 1) ? summary : StateSummary.None);
            states.Add(h);
        }
        return new TrainingStates(states, summaries);
    }

    /// <summary>
    /// Which attention branches each of <paramref name="layers"/> checkpointed layers keeps, within
    /// <see cref="KeptAttentionBytes"/>, and the elements that takes. A kept element saves as many multiply-adds in the
    /// backward as its branch's rows attend to keys, so branches are taken in that order, each for as many layers as
    /// still fit: at 50k tiles the r = 4, 8, 16 branches (a quarter of the kept memory per layer, over half the
    /// attention's work) for every layer before the r = 1 branch of any.
    /// </summary>
    internal (IReadOnlySet<int>[] Kept, long Elements) KeptBranches(long batch, long length, int layers, long elementSize, AttentionBlocking blocking)
    {
        var kept = Enumerable.Range(0, layers).Select(_ => new HashSet<int>()).ToArray();
        long budget = KeptAttentionBytes / elementSize, used = 0;
        var records = DilatedAttentionKernel.BranchRecords(batch, length, Config.HeadCount, Config.HeadDim, Config.SegmentLengths,
            Config.DilationRatios, blocking);
        foreach (var record in records.OrderByDescending(r => r.KeysPerRow).ThenBy(r => r.Branch))
        {
            foreach (var layer in kept)
            {
                if (used + record.Elements > budget) break;
                layer.Add(record.Branch);
                used += record.Elements;
            }
        }
        return (kept, used);
    }

    /// <summary>
    /// Rough float32 bytes autograd keeps for <paramref name="layers"/> layers over <paramref name="length"/> tokens:
    /// per token about 16 D-wide tensors (norm inputs and outputs, q, k, v, the attention's saved block outputs,
    /// projections, residuals) and 4 F-wide ones (fc1, GELU, sub-LN, its normalised input).
    /// </summary>
    public long ActivationBytes(long length, int layers) => 4L * length * layers * (16L * Config.EmbedDim + 4L * Config.FeedForwardDim);

    /// <summary>The dtype q, k and v are projected in: the attention projections' weights' (float32 unless reduced).</summary>
    private ScalarType ProjectionDType => encoder.layers[0].self_attn.q_proj.weight!.dtype;

    /// <summary>LN_out(S)[:, 0] - the reference's head with global_pool = False.</summary>
    public Tensor HeadCls(Tensor state) => norm.forward(Summarize(state, StateSummary.Cls));

    /// <summary>LN_out(mean over tiles of S) - the reference's head with global_pool = True (cls excluded).</summary>
    public Tensor HeadPooled(Tensor state) => norm.forward(Summarize(state, StateSummary.MeanOfTiles));

    /// <summary>The <paramref name="summary"/> row [B, D] of a state [B, L, D], before the output LayerNorm.</summary>
    public static Tensor Summarize(Tensor state, StateSummary summary) => summary switch
    {
        StateSummary.Cls => state.select(1, 0),
        StateSummary.MeanOfTiles => state.narrow(1, 1, state.shape[1] - 1).mean([1]),
        _ => throw new ArgumentOutOfRangeException(nameof(summary)),
    };
}
