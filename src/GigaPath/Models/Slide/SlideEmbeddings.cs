using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>Which slide-encoder output is the slide embedding.</summary>
public enum SlidePooling
{
    /// <summary>The reference's default forward: the CLS token through both final norms (fixture <c>embed_default</c>).</summary>
    Cls,

    /// <summary>The mean over tiles (<c>global_pool=True</c>, fixture <c>embed_global_pool</c>); the authors advise it
    /// because the CLS token was not trained during slide-level pretraining.</summary>
    Mean,
}

/// <summary>
/// The slide encoder's outputs for one slide (returned by <see cref="SlideEncoder.Embed(Tensor, Tensor, bool)"/>).
/// Every tensor is float32 on the CPU and owned by this object: dispose it, and copy (<c>clone()</c>) any tensor that
/// must outlive it. D is the config's <see cref="SlideEncoderConfig.EmbedDim"/> (768 for Prov-GigaPath), N the number
/// of tiles and K the number of layers.
/// </summary>
public sealed class SlideEmbeddings : IDisposable
{
    internal SlideEmbeddings() { }

    /// <summary>[1, D] LN_out(LN_enc(h_K))[:, 0]: the reference's default (global_pool = False, cls token).</summary>
    public Tensor ClsEmbedding { get; internal init; } = null!;

    /// <summary>
    /// [1, D] LN_out(mean over tiles of LN_enc(h_K)): the reference's forward with global_pool = True.
    /// (pipeline.py's <c>last_layer_embed</c> is <see cref="MeanPooledLayerEmbeddings"/>[K], without LN_enc.)
    /// </summary>
    public Tensor MeanPooledEmbedding { get; internal init; } = null!;

    /// <summary>K+1 tensors [1, D]: LN_out(h_i)[:, 0] for i = 0..K (all_layer_embed = True, global_pool = False); null unless requested.</summary>
    public IReadOnlyList<Tensor>? ClsLayerEmbeddings { get; internal init; }

    /// <summary>K+1 tensors [1, D]: LN_out(mean over tiles of h_i) (all_layer_embed = True, global_pool = True); null unless requested.</summary>
    public IReadOnlyList<Tensor>? MeanPooledLayerEmbeddings { get; internal init; }

    /// <summary>[1, N+1, D] encoder_out = LN_enc(h_K), cls token at index 0.</summary>
    public Tensor LastHiddenState { get; internal init; } = null!;

    /// <summary>[N, D] the tiles' rows of <see cref="LastHiddenState"/> (contextualised tile embeddings, input order).</summary>
    public Tensor ContextualTileEmbeddings { get; internal init; } = null!;

    /// <summary>Non-fatal findings about the input (e.g. tiles sharing a grid cell).</summary>
    public IReadOnlyList<string> Warnings { get; internal init; } = [];

    /// <summary>
    /// How the tiles were placed on the grid when they came from a tile-feature file (<c>coords_tiling</c>, or the rule
    /// and step that turned level-0 coordinates into grid positions); null when the caller passed positions directly.
    /// </summary>
    public TilePlacement? Placement { get; internal set; }

    /// <summary>Number of tiles N.</summary>
    public int TileCount => (int)ContextualTileEmbeddings.shape[0];

    /// <summary>The slide embedding [1, D] in <paramref name="pooling"/>: <see cref="ClsEmbedding"/> or <see cref="MeanPooledEmbedding"/>.</summary>
    public Tensor GetSlideEmbedding(SlidePooling pooling) => pooling == SlidePooling.Mean ? MeanPooledEmbedding : ClsEmbedding;

    /// <summary>The per-layer embeddings in <paramref name="pooling"/> (<see cref="ClsLayerEmbeddings"/> or <see cref="MeanPooledLayerEmbeddings"/>), null unless requested.</summary>
    public IReadOnlyList<Tensor>? GetLayerEmbeddings(SlidePooling pooling) => pooling == SlidePooling.Mean ? MeanPooledLayerEmbeddings : ClsLayerEmbeddings;

    /// <summary>Frees every tensor.</summary>
    public void Dispose()
    {
        ClsEmbedding.Dispose();
        MeanPooledEmbedding.Dispose();
        foreach (var t in ClsLayerEmbeddings ?? []) t.Dispose();
        foreach (var t in MeanPooledLayerEmbeddings ?? []) t.Dispose();
        LastHiddenState.Dispose();
        ContextualTileEmbeddings.Dispose();
    }
}

/// <summary>
/// The names of <see cref="SlidePooling"/> values ("cls", "mean") as slide-embedding files record them (the
/// <c>pool</c> metadata) and as command lines and requests spell them: the one parser and printer of those names.
/// </summary>
public static class SlidePoolingNames
{
    /// <summary>Parses "cls" or "mean" (any case, surrounding white space ignored).</summary>
    /// <param name="text">The name.</param>
    /// <param name="pooling">The pooling it names; <see cref="SlidePooling.Mean"/> when it names none.</param>
    /// <returns>Whether <paramref name="text"/> names a pooling.</returns>
    public static bool TryParse(string? text, out SlidePooling pooling)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "cls": pooling = SlidePooling.Cls; return true;
            case "mean": pooling = SlidePooling.Mean; return true;
            default: pooling = SlidePooling.Mean; return false;
        }
    }

    /// <summary>"cls" or "mean" (any case); null gives <paramref name="fallback"/>. Anything else is an error naming <paramref name="what"/>.</summary>
    internal static SlidePooling Parse(string? text, string what, SlidePooling fallback = SlidePooling.Mean) =>
        text is null ? fallback
        : TryParse(text, out var pooling) ? pooling
        : throw new GigaPathException($"{what} '{text}' is not supported (use cls or mean)");

    /// <summary>The name of <paramref name="pooling"/>: "cls" or "mean".</summary>
    /// <param name="pooling">A pooling.</param>
    public static string ToName(SlidePooling pooling) => pooling == SlidePooling.Cls ? "cls" : "mean";
}
