using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>
/// The slide encoder's outputs for one slide; every tensor is float32 on the CPU and owned by this object.
/// </summary>
public sealed class SlideEncoding : IDisposable
{
    /// <summary>[1, D] LN_out(LN_enc(h_K))[:, 0]: the reference's default (global_pool = False, cls token).</summary>
    public required Tensor EmbedDefault { get; init; }

    /// <summary>
    /// [1, D] LN_out(mean over tiles of LN_enc(h_K)): the reference's forward with global_pool = True.
    /// (pipeline.py's <c>last_layer_embed</c> is <see cref="LayersPooled"/>[K], without LN_enc.)
    /// </summary>
    public required Tensor EmbedGlobalPool { get; init; }

    /// <summary>K+1 tensors [1, D]: LN_out(h_i)[:, 0] for i = 0..K (all_layer_embed = True, global_pool = False); null unless requested.</summary>
    public IReadOnlyList<Tensor>? Layers { get; init; }

    /// <summary>K+1 tensors [1, D]: LN_out(mean over tiles of h_i) (all_layer_embed = True, global_pool = True); null unless requested.</summary>
    public IReadOnlyList<Tensor>? LayersPooled { get; init; }

    /// <summary>[1, N+1, D] encoder_out = LN_enc(h_K), cls token at index 0.</summary>
    public required Tensor LastHiddenState { get; init; }

    /// <summary>[N, D] the tiles' rows of <see cref="LastHiddenState"/> (contextualised tile embeddings, input order).</summary>
    public required Tensor TileEmbeddingsCtx { get; init; }

    /// <summary>Non-fatal findings about the input (e.g. tiles sharing a grid cell).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>
    /// How the tiles' positions were found when they came from a tile-feature file (<c>coords_tiling</c>, or the rule
    /// that turned level-0 coordinates into grid positions); null when the caller passed positions directly.
    /// </summary>
    public string? Positions { get; internal set; }

    public int TileCount => (int)TileEmbeddingsCtx.shape[0];

    public void Dispose()
    {
        EmbedDefault.Dispose();
        EmbedGlobalPool.Dispose();
        foreach (var t in Layers ?? []) t.Dispose();
        foreach (var t in LayersPooled ?? []) t.Dispose();
        LastHiddenState.Dispose();
        TileEmbeddingsCtx.Dispose();
    }
}
