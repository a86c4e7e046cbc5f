using GigaPath.Models.Tile;

namespace GigaPath.Benchmarks;

/// <summary>Analytic FLOP counts (2 per multiply-add) used to express achieved rates against the GEMM roofline.</summary>
public static class ModelCost
{
    /// <summary>≈ 456 GFLOP per 224×224 tile for the full Prov-GigaPath tile encoder (any named encoder: registers and a GELU MLP included).</summary>
    public static double TileEncoderFlopsPerTile(TileEncoderConfig c)
    {
        double d = c.EmbedDim, n = c.SequenceLength;
        double perTokenBlock = 3 * d * d + d * d + d * c.MlpPackedHiddenDim + c.MlpHiddenDim * d;
        double attention = 2 * n * d; // scores and A·V per query token
        double blocks = c.Depth * n * (perTokenBlock + attention);
        double patch = c.PatchCount * (double)c.InputChannels * c.PatchSize * c.PatchSize * d;
        return 2 * (blocks + patch);
    }

    /// <summary>
    /// What the engine actually computes per tile for the embedding: the model's FLOPs less the last block's work on
    /// the tokens after the class token, whose outputs a class-token embedding never uses - only their k and v are
    /// needed. An embedding that pools the patch tokens (Virchow) needs the whole model.
    /// </summary>
    public static double TileEncoderExecutedFlopsPerTile(TileEncoderConfig c)
    {
        if (c.Pooling != TileEmbeddingPooling.ClassToken) return TileEncoderFlopsPerTile(c);
        double d = c.EmbedDim, n = c.SequenceLength;
        double skippedPerToken = d * d + d * d + d * c.MlpPackedHiddenDim + c.MlpHiddenDim * d + 2 * n * d; // q, proj, MLP, attention row
        return TileEncoderFlopsPerTile(c) - 2 * (n - 1) * skippedPerToken;
    }
}
