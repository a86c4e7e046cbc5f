using GigaPath.Models.Slide;
using GigaPath.Runtime;
using GigaPath.Weights;
using static TorchSharp.torch;

namespace GigaPath.IO;

/// <summary>
/// The slide-embedding safetensors file (<c>embed-slide</c> and <c>run</c> outputs): <c>slide_embedding</c> [1, D] in
/// the chosen pooling, <c>last_hidden_state</c> [1, N+1, D], <c>layer_0</c> … <c>layer_K</c> [1, D] in the same
/// pooling when all layers were computed, and <c>tile_embeddings_ctx</c> [N, D]; provenance in the metadata.
/// </summary>
public static class SlideEmbeddingFile
{
    /// <summary>Tensor name of the slide embedding [1, D] in the file's pooling.</summary>
    public const string SlideEmbedding = "slide_embedding";
    /// <summary>Tensor name of the encoder output [1, N+1, D] (CLS token first).</summary>
    public const string LastHiddenState = "last_hidden_state";
    /// <summary>Tensor name of the contextualised tile embeddings [N, D], in input order.</summary>
    public const string ContextualTileEmbeddings = "tile_embeddings_ctx";

    /// <summary>Tensor name of layer <paramref name="i"/>'s embedding [1, D] (0 = the input embedding, K = the last layer).</summary>
    public static string GetLayerName(int i) => $"layer_{i}";

    /// <summary>The named tensors of <paramref name="encoding"/> as written, in file order (views, not copies).</summary>
    public static List<KeyValuePair<string, Tensor>> GetTensors(SlideEmbeddings encoding, SlidePooling pooling)
    {
        var tensors = new List<KeyValuePair<string, Tensor>>
        {
            new(SlideEmbedding, encoding.GetSlideEmbedding(pooling)),
            new(LastHiddenState, encoding.LastHiddenState),
        };
        var layers = encoding.GetLayerEmbeddings(pooling);
        if (layers is not null)
            tensors.AddRange(layers.Select((t, i) => new KeyValuePair<string, Tensor>(GetLayerName(i), t)));
        tensors.Add(new(ContextualTileEmbeddings, encoding.ContextualTileEmbeddings));
        return tensors;
    }

    /// <summary>Writes the file atomically; <c>pool</c> is added to <paramref name="metadata"/>.</summary>
    public static void Write(string path, SlideEmbeddings encoding, SlidePooling pooling, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            ["format"] = "pt",
            ["pool"] = SlidePoolingNames.ToName(pooling),
        };
        SafeTensorsWriter.Write(path, GetTensors(encoding, pooling), meta);
    }

    /// <summary>
    /// Writes the file atomically, recording who made it: this engine and its version, and the SHA-256 of
    /// <paramref name="encoder"/>'s weights (<c>slide_model_sha256</c>), added to <paramref name="metadata"/> with
    /// <c>pool</c>.
    /// </summary>
    /// <param name="path">The .safetensors file to write.</param>
    /// <param name="encoding">The encoder's output.</param>
    /// <param name="pooling">Which slide embedding to write as <c>slide_embedding</c>.</param>
    /// <param name="encoder">The slide encoder that made <paramref name="encoding"/>.</param>
    /// <param name="metadata">More metadata to record; null for none.</param>
    public static void WriteWithProvenance(string path, SlideEmbeddings encoding, SlidePooling pooling, SlideEncoder encoder, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        Write(path, encoding, pooling, new Provenance { SlideModelSha256 = encoder.WeightsSha256 }.AddTo(meta));
    }
}
