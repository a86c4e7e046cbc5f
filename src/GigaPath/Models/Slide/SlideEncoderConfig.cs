namespace GigaPath.Models.Slide;

/// <summary>
/// Hyperparameters of the Prov-GigaPath slide encoder (LongNetViT with a dilated-attention LongNet encoder).
/// Only what changes the inference math is carried; dropout and drop-path are identity in eval mode.
/// </summary>
public sealed record SlideEncoderConfig
{
    /// <summary>Width of the incoming tile embeddings (1536 for the Prov-GigaPath tile encoder).</summary>
    public required int InputChannels { get; init; }
    /// <summary>Token width D of the encoder and of the slide embedding (768 for Prov-GigaPath).</summary>
    public required int EmbedDim { get; init; }
    /// <summary>Number of LongNet encoder layers K (12 for Prov-GigaPath).</summary>
    public required int Depth { get; init; }
    /// <summary>Attention heads per layer; must divide <see cref="EmbedDim"/>.</summary>
    public required int HeadCount { get; init; }
    /// <summary>Hidden width of each layer's feed-forward network (3072 for Prov-GigaPath).</summary>
    public required int FeedForwardDim { get; init; }
    /// <summary>Segment length of each dilated-attention branch, zipped pairwise with <see cref="DilationRatios"/>.</summary>
    public required IReadOnlyList<int> SegmentLengths { get; init; }
    /// <summary>Dilation of each dilated-attention branch, zipped pairwise with <see cref="SegmentLengths"/>.</summary>
    public required IReadOnlyList<int> DilationRatios { get; init; }
    /// <summary>Side of the positional grid: valid grid cells are 0 ≤ gx, gy &lt; PositionGridSize.</summary>
    public int PositionGridSize { get; init; } = 1000;
    /// <summary>Pixel size of one grid cell; coordinates are divided by this (fixed at 256 by the reference).</summary>
    public int TileSize { get; init; } = 256;
    /// <summary>Eps of the outer <c>norm</c> LayerNorm.</summary>
    public double OuterNormEps { get; init; } = 1e-6;
    /// <summary>Eps of every LayerNorm inside the LongNet encoder.</summary>
    public double EncoderLayerNormEps { get; init; } = 1e-5;

    /// <summary>Width of one attention head: <see cref="EmbedDim"/> / <see cref="HeadCount"/>.</summary>
    public int HeadDim => EmbedDim / HeadCount;

    /// <summary>
    /// The published <c>gigapath_slide_enc12l768d</c>: 1536 → 768, 12 layers, 16 heads, FFN 3072, segments derived from
    /// the default max_wsi_size 262144 and tile size 256, ratios [1, 2, 4, 8, 16].
    /// </summary>
    public static SlideEncoderConfig ProvGigaPath { get; } = new()
    {
        InputChannels = 1536,
        EmbedDim = 768,
        Depth = 12,
        HeadCount = 16,
        FeedForwardDim = 3072,
        SegmentLengths = SegmentLengthsFor(262144, 256),
        DilationRatios = [1, 2, 4, 8, 16],
        SourceName = "prov-gigapath",
    };

    /// <summary>
    /// The reference's <c>LongNetViT.get_optimal_segment_length</c>: five lengths 2^e with e evenly spaced from 10 to
    /// floor(log2((maxWsiSize / tileSize)²)), truncated to integers (e.g. 262144 → [1024, 5792, 32768, 185363, 1048576]).
    /// </summary>
    public static int[] SegmentLengthsFor(int maxWsiSize, int tileSize)
    {
        if (tileSize <= 0)
            throw new ModelConfigException($"tile_size must be positive, got {tileSize}", "slide encoder config", "tile_size");
        if (maxWsiSize < tileSize)
            throw new ModelConfigException($"max_wsi_size ({maxWsiSize}) must be at least tile_size ({tileSize})", "slide encoder config", "max_wsi_size");
        long side = maxWsiSize / tileSize;
        double maxSeqLen = (double)side * side;
        const double start = 10.0; // log2(1024)
        double stop = Math.Floor(Math.Log2(maxSeqLen));
        // numpy.linspace: start + i * step, with the last value set to stop exactly.
        double step = (stop - start) / 4;
        var result = new int[5];
        for (int i = 0; i < 5; i++)
        {
            double e = i == 4 ? stop : start + i * step;
            double value = Math.Pow(2, e);
            if (value > int.MaxValue)
                throw new ModelConfigException($"max_wsi_size {maxWsiSize} gives a segment length 2^{e} beyond the supported range", "slide encoder config", "max_wsi_size");
            result[i] = (int)value;
        }
        return result;
    }

    /// <summary>Where the config came from (a file path, or "built-in"), for messages.</summary>
    public string SourceName { get; init; } = "built-in";

    /// <summary>True when read from a config.json: messages then name JSON fields, otherwise C# properties.</summary>
    internal bool ReadFromJson { get; init; }

    /// <summary>
    /// Checks every value and their consistency and returns this config; a failure throws
    /// <see cref="GigaPathException"/> naming the field (the JSON field for a loaded config, the C# property for one
    /// built in code).
    /// </summary>
    public SlideEncoderConfig Validate()
    {
        string F(string json, string property) => ReadFromJson ? json : property;
        ModelConfigException Fail(string json, string property, string why) => new($"{SourceName}: {F(json, property)} {why}", SourceName, F(json, property));
        void Positive(string json, string property, long v)
        {
            if (v <= 0) throw Fail(json, property, $"must be positive, got {v}");
        }
        Positive("in_chans", nameof(InputChannels), InputChannels);
        Positive("embed_dim", nameof(EmbedDim), EmbedDim);
        Positive("depth", nameof(Depth), Depth);
        Positive("num_heads", nameof(HeadCount), HeadCount);
        Positive("ffn_dim", nameof(FeedForwardDim), FeedForwardDim);
        Positive("slide_ngrids", nameof(PositionGridSize), PositionGridSize);
        Positive("tile_size", nameof(TileSize), TileSize);
        if (EmbedDim % HeadCount != 0)
            throw Fail("embed_dim", nameof(EmbedDim), $"{EmbedDim} is not divisible by {F("num_heads", nameof(HeadCount))} {HeadCount}");
        if (EmbedDim % 4 != 0)
            throw Fail("embed_dim", nameof(EmbedDim), $"{EmbedDim} must be a multiple of 4 (2-D sin-cos positions)");
        if (SegmentLengths is null || SegmentLengths.Count == 0)
            throw Fail("segment_length", nameof(SegmentLengths), "must list at least one branch");
        if (DilationRatios is null || DilationRatios.Count != SegmentLengths.Count)
            throw Fail("dilated_ratio", nameof(DilationRatios), $"has {DilationRatios?.Count ?? 0} entries but {F("segment_length", nameof(SegmentLengths))} has {SegmentLengths.Count}; they are zipped pairwise");
        for (int i = 0; i < SegmentLengths.Count; i++)
        {
            if (SegmentLengths[i] <= 0)
                throw Fail($"segment_length[{i}]", $"{nameof(SegmentLengths)}[{i}]", $"must be positive, got {SegmentLengths[i]}");
            if (DilationRatios[i] <= 0)
                throw Fail($"dilated_ratio[{i}]", $"{nameof(DilationRatios)}[{i}]", $"must be positive, got {DilationRatios[i]}");
        }
        if (!(OuterNormEps > 0) || !double.IsFinite(OuterNormEps))
            throw Fail("outer_norm_eps", nameof(OuterNormEps), $"must be a positive number, got {OuterNormEps}");
        if (!(EncoderLayerNormEps > 0) || !double.IsFinite(EncoderLayerNormEps))
            throw Fail("encoder_layernorm_eps", nameof(EncoderLayerNormEps), $"must be a positive number, got {EncoderLayerNormEps}");
        return this;
    }

    /// <summary>Equal when every value that changes the model is equal (the source is ignored).</summary>
    public bool Equals(SlideEncoderConfig? other) =>
        other is not null && InputChannels == other.InputChannels && EmbedDim == other.EmbedDim && Depth == other.Depth &&
        HeadCount == other.HeadCount && FeedForwardDim == other.FeedForwardDim && PositionGridSize == other.PositionGridSize &&
        TileSize == other.TileSize && OuterNormEps.Equals(other.OuterNormEps) &&
        EncoderLayerNormEps.Equals(other.EncoderLayerNormEps) &&
        SegmentLengths.SequenceEqual(other.SegmentLengths) && DilationRatios.SequenceEqual(other.DilationRatios);

    /// <inheritdoc/>
    public override int GetHashCode() =>
        HashCode.Combine(InputChannels, EmbedDim, Depth, HeadCount, FeedForwardDim, string.Join(",", SegmentLengths), string.Join(",", DilationRatios));

    /// <summary>A one-line description recorded in output metadata and messages.</summary>
    public override string ToString() =>
        $"LongNetViT {InputChannels}->{EmbedDim}, {Depth} layers, {HeadCount} heads, FFN {FeedForwardDim}, segments [{string.Join(", ", SegmentLengths)}], ratios [{string.Join(", ", DilationRatios)}]";

    /// <summary>
    /// Reads and validates a slide-encoder <c>config.json</c> (snake_case keys as in the reference); errors name the
    /// file and the JSON field, and unknown fields are refused so a typo never falls back to a default.
    /// </summary>
    public static SlideEncoderConfig Load(string path)
    {
        if (!File.Exists(path))
            throw new ModelNotFoundException($"{path}: slide encoder config not found", path);
        return FromJson(File.ReadAllText(path), path);
    }

    /// <summary>Parses and validates config.json text; <paramref name="sourceName"/> names it in messages.</summary>
    public static SlideEncoderConfig FromJson(string json, string sourceName) => SlideEncoderConfigJson.Parse(json, sourceName);

    /// <summary>The config.json text that <see cref="FromJson"/> reads back.</summary>
    public string ToJson() => SlideEncoderConfigJson.Write(this);
}
