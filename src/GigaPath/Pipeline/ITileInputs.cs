using static TorchSharp.torch;

namespace GigaPath.Pipeline;

/// <summary>An ordered list of tiles to embed, read a batch at a time as normalised pixels.</summary>
internal interface ITileInputs
{
    int Count { get; }

    /// <summary>Tiles [start, start + count) as a new float32 CPU tensor [count, 3, H, W] owned by the caller.</summary>
    Tensor ReadBatch(int start, int count);

    /// <summary>Tile <paramref name="index"/> as a person would find it (its file, or its row in a tensor file), for errors.</summary>
    string Describe(int index);
}
