using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

/// <summary>Output of <see cref="TileEncoder.Embed"/>: float32 CPU tensors owned by this object.</summary>
public sealed class TileEmbeddings : IDisposable
{
    /// <summary>CLS embedding per tile, [B, D].</summary>
    public Tensor Embeddings { get; }

    /// <summary>All tokens after the final norm, [B, 1 + patches, D] (CLS first), when requested.</summary>
    public Tensor? Tokens { get; }

    /// <summary>Takes ownership of <paramref name="embeddings"/> [B, D] and <paramref name="tokens"/> [B, 1 + patches, D] (or null).</summary>
    public TileEmbeddings(Tensor embeddings, Tensor? tokens)
    {
        Embeddings = embeddings;
        Tokens = tokens;
    }

    /// <summary>Number of tiles or images B.</summary>
    public long Count => Embeddings.shape[0];

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        Embeddings.Dispose();
        Tokens?.Dispose();
    }
}
