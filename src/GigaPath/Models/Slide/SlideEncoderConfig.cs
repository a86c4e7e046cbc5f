namespace GigaPath.Models.Slide;

/// <summary>
/// Hyperparameters of the Prov-GigaPath slide encoder (LongNetViT with a dilated-attention LongNet encoder).
/// Only what changes the inference math is carried; dropout and drop-path are identity in eval mode.
/// </summary>
public sealed record SlideEncoderConfig
{
    /// <summary>Width of the incoming tile embeddings (1536 for the Prov-GigaPath tile encoder).</summary>
    public required int InChans { get; init; }
    public required int EmbedDim { get; init; }
    public required int Depth { get; init; }
    public required int NumHeads { get; init; }
    public required int FfnDim { get; init; }
    /// <summary>Segment length of each dilated-attention branch, zipped pairwise with <see cref="DilatedRatio"/>.</summary>
    public required IReadOnlyList<int> SegmentLength { get; init; }
    public required IReadOnlyList<int> DilatedRatio { get; init; }
    /// <summary>Side of the positional grid: valid grid cells are 0 ≤ gx, gy &lt; SlideNgrids.</summary>
    public int SlideNgrids { get; init; } = 1000;
    /// <summary>Pixel size of one grid cell; coordinates are divided by this (fixed at 256 by the reference).</summary>
    public int TileSize { get; init; } = 256;
    /// <summary>Eps of the outer <c>norm</c> LayerNorm.</summary>
    public double OuterNormEps { get; init; } = 1e-6;
    /// <summary>Eps of every LayerNorm inside the LongNet encoder.</summary>
    public double EncoderLayerNormEps { get; init; } = 1e-5;

    public int HeadDim => EmbedDim / NumHeads;

    /// <summary>
    /// The published <c>gigapath_slide_enc12l768d</c>: 1536 → 768, 12 layers, 16 heads, FFN 3072, segments derived from
    /// the default max_wsi_size 262144 and tile size 256, ratios [1, 2, 4, 8, 16].
    /// </summary>
    public static SlideEncoderConfig ProvGigaPath { get; } = new()
    {
        InChans = 1536,
        EmbedDim = 768,
        Depth = 12,
        NumHeads = 16,
        FfnDim = 3072,
        SegmentLength = SegmentLengthsFor(262144, 256),
        DilatedRatio = [1, 2, 4, 8, 16],
    };

    /// <summary>
    /// The reference's <c>LongNetViT.get_optimal_segment_length</c>: five lengths 2^e with e evenly spaced from 10 to
    /// floor(log2((maxWsiSize / tileSize)²)), truncated to integers (e.g. 262144 → [1024, 5792, 32768, 185363, 1048576]).
    /// </summary>
    public static int[] SegmentLengthsFor(int maxWsiSize, int tileSize)
    {
        if (tileSize <= 0)
            throw new GigaPathException($"tile_size must be positive, got {tileSize}");
        if (maxWsiSize < tileSize)
            throw new GigaPathException($"max_wsi_size ({maxWsiSize}) must be at least tile_size ({tileSize})");
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
                throw new GigaPathException($"max_wsi_size {maxWsiSize} gives a segment length 2^{e} beyond the supported range");
            result[i] = (int)value;
        }
        return result;
    }

    /// <summary>Checks every value and their consistency; the message names the field.</summary>
    public SlideEncoderConfig Validate(string source = "slide encoder config")
    {
        void Positive(string field, long v)
        {
            if (v <= 0) throw new GigaPathException($"{source}: {field} must be positive, got {v}");
        }
        Positive("in_chans", InChans);
        Positive("embed_dim", EmbedDim);
        Positive("depth", Depth);
        Positive("num_heads", NumHeads);
        Positive("ffn_dim", FfnDim);
        Positive("slide_ngrids", SlideNgrids);
        Positive("tile_size", TileSize);
        if (EmbedDim % NumHeads != 0)
            throw new GigaPathException($"{source}: embed_dim {EmbedDim} is not divisible by num_heads {NumHeads}");
        if (EmbedDim % 4 != 0)
            throw new GigaPathException($"{source}: embed_dim {EmbedDim} must be a multiple of 4 (2-D sin-cos positions)");
        if (SegmentLength is null || SegmentLength.Count == 0)
            throw new GigaPathException($"{source}: segment_length must list at least one branch");
        if (DilatedRatio is null || DilatedRatio.Count != SegmentLength.Count)
            throw new GigaPathException($"{source}: dilated_ratio has {DilatedRatio?.Count ?? 0} entries but segment_length has {SegmentLength.Count}; they are zipped pairwise");
        for (int i = 0; i < SegmentLength.Count; i++)
        {
            if (SegmentLength[i] <= 0)
                throw new GigaPathException($"{source}: segment_length[{i}] must be positive, got {SegmentLength[i]}");
            if (DilatedRatio[i] <= 0)
                throw new GigaPathException($"{source}: dilated_ratio[{i}] must be positive, got {DilatedRatio[i]}");
        }
        if (!(OuterNormEps > 0) || !double.IsFinite(OuterNormEps))
            throw new GigaPathException($"{source}: outer_norm_eps must be a positive number, got {OuterNormEps}");
        if (!(EncoderLayerNormEps > 0) || !double.IsFinite(EncoderLayerNormEps))
            throw new GigaPathException($"{source}: encoder_layernorm_eps must be a positive number, got {EncoderLayerNormEps}");
        return this;
    }

    public bool Equals(SlideEncoderConfig? other) =>
        other is not null && InChans == other.InChans && EmbedDim == other.EmbedDim && Depth == other.Depth &&
        NumHeads == other.NumHeads && FfnDim == other.FfnDim && SlideNgrids == other.SlideNgrids &&
        TileSize == other.TileSize && OuterNormEps.Equals(other.OuterNormEps) &&
        EncoderLayerNormEps.Equals(other.EncoderLayerNormEps) &&
        SegmentLength.SequenceEqual(other.SegmentLength) && DilatedRatio.SequenceEqual(other.DilatedRatio);

    public override int GetHashCode() =>
        HashCode.Combine(InChans, EmbedDim, Depth, NumHeads, FfnDim, string.Join(",", SegmentLength), string.Join(",", DilatedRatio));

    public override string ToString() =>
        $"LongNetViT {InChans}->{EmbedDim}, {Depth} layers, {NumHeads} heads, FFN {FfnDim}, segments [{string.Join(", ", SegmentLength)}], ratios [{string.Join(", ", DilatedRatio)}]";

    /// <summary>Reads a config.json in the fixtures' format (see <see cref="SlideEncoderConfigJson"/>).</summary>
    public static SlideEncoderConfig Load(string path) => SlideEncoderConfigJson.Load(path);

    public string ToJson() => SlideEncoderConfigJson.Write(this);
}
