using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

/// <summary>
/// Output of <see cref="TileEncoder"/>'s embedding methods: float32 CPU tensors owned by this object (dispose it), and
/// the same values as plain floats (<see cref="ToArrays"/>) for callers that do not use TorchSharp.
/// </summary>
public sealed class TileEmbeddings : IDisposable
{
    /// <summary>CLS embedding per tile, [B, D].</summary>
    public Tensor Embeddings { get; }

    /// <summary>All tokens after the final norm, [B, prefix + patches, D] (class token, registers, patches), when requested.</summary>
    public Tensor? Tokens { get; }

    /// <summary>Takes ownership of <paramref name="embeddings"/> [B, D] and <paramref name="tokens"/> [B, T, D] (or null).</summary>
    internal TileEmbeddings(Tensor embeddings, Tensor? tokens)
    {
        Embeddings = embeddings;
        Tokens = tokens;
    }

    /// <summary>Number of tiles or images B.</summary>
    public int Count => (int)Embeddings.shape[0];

    /// <summary>Width of one embedding.</summary>
    public int Dim => (int)Embeddings.shape[1];

    /// <summary>The embeddings as one float array per tile, in input order (copies: the result may be disposed afterwards).</summary>
    public float[][] ToArrays()
    {
        var flat = Embeddings.data<float>().ToArray();
        int dim = Dim;
        return Enumerable.Range(0, Count).Select(i => flat.AsSpan(i * dim, dim).ToArray()).ToArray();
    }

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        Embeddings.Dispose();
        Tokens?.Dispose();
    }
}
