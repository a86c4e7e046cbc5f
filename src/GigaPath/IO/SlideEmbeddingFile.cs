using GigaPath.Models.Slide;
using GigaPath.Weights;
using static TorchSharp.torch;

namespace GigaPath.IO;

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
/// The slide-embedding safetensors file (<c>embed-slide</c> and <c>run</c> outputs): <c>slide_embedding</c> [1, D] in
/// the chosen pooling, <c>last_hidden_state</c> [1, N+1, D], <c>layer_0</c> … <c>layer_K</c> [1, D] in the same
/// pooling when all layers were computed, and <c>tile_embeddings_ctx</c> [N, D]; provenance in the metadata.
/// </summary>
public static class SlideEmbeddingFile
{
    public const string SlideEmbedding = "slide_embedding";
    public const string LastHiddenState = "last_hidden_state";
    public const string TileEmbeddingsCtx = "tile_embeddings_ctx";

    public static string LayerName(int i) => $"layer_{i}";

    public static SlidePooling ParsePooling(string text) => text.Trim().ToLowerInvariant() switch
    {
        "cls" => SlidePooling.Cls,
        "mean" => SlidePooling.Mean,
        _ => throw new GigaPathException($"--pool '{text}' is not supported (use cls or mean)"),
    };

    public static string Name(SlidePooling pooling) => pooling == SlidePooling.Cls ? "cls" : "mean";

    /// <summary>The named tensors of <paramref name="encoding"/> as written, in file order (views, not copies).</summary>
    public static List<KeyValuePair<string, Tensor>> Tensors(SlideEncoding encoding, SlidePooling pooling)
    {
        var tensors = new List<KeyValuePair<string, Tensor>>
        {
            new(SlideEmbedding, pooling == SlidePooling.Mean ? encoding.EmbedGlobalPool : encoding.EmbedDefault),
            new(LastHiddenState, encoding.LastHiddenState),
        };
        var layers = pooling == SlidePooling.Mean ? encoding.LayersPooled : encoding.Layers;
        if (layers is not null)
            tensors.AddRange(layers.Select((t, i) => new KeyValuePair<string, Tensor>(LayerName(i), t)));
        tensors.Add(new(TileEmbeddingsCtx, encoding.TileEmbeddingsCtx));
        return tensors;
    }

    /// <summary>Writes the file atomically; <c>pool</c> is added to <paramref name="metadata"/>.</summary>
    public static void Write(string path, SlideEncoding encoding, SlidePooling pooling, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            ["format"] = "pt",
            ["pool"] = Name(pooling),
        };
        SafeTensorsWriter.Write(path, Tensors(encoding, pooling), meta);
    }
}
