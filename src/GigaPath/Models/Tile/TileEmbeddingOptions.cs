using GigaPath.Imaging;

namespace GigaPath.Models.Tile;

/// <summary>How <see cref="TileEncoder.EmbedAsync"/> and <see cref="TileEncoder.EmbedBatchesAsync"/> read and batch tiles. Results never depend on these.</summary>
public sealed record TileEmbeddingOptions
{
    /// <summary>Tiles per forward pass (default 16).</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Tasks decoding and preprocessing tiles while the encoder runs (default: one per core).</summary>
    public int Readers { get; init; } = Environment.ProcessorCount;

    /// <summary>Batches that may be read ahead of the encoder (default 2); bounds the memory reading takes.</summary>
    public int ReadAheadBatches { get; init; } = 2;

    /// <summary>Also return every final-norm token of each tile (<see cref="TileEmbeddings.Tokens"/>).</summary>
    public bool ReturnTokens { get; init; }

    /// <summary>Thinnest image accepted, longest over shortest side (see <see cref="TilePreprocessor.MaxAspectRatio"/>).</summary>
    public double MaxAspectRatio { get; init; } = TilePreprocessor.DefaultMaxAspectRatio;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid option.</summary>
    public TileEmbeddingOptions Validate()
    {
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "must be at least 1");
        if (Readers < 1) throw new ArgumentOutOfRangeException(nameof(Readers), Readers, "must be at least 1");
        if (ReadAheadBatches < 1) throw new ArgumentOutOfRangeException(nameof(ReadAheadBatches), ReadAheadBatches, "must be at least 1");
        if (!(MaxAspectRatio >= 1) || !double.IsFinite(MaxAspectRatio))
            throw new ArgumentOutOfRangeException(nameof(MaxAspectRatio), MaxAspectRatio, "must be a finite number >= 1");
        return this;
    }
}

/// <summary>Progress of a tile embedding run: tiles done out of the total, and the time spent so far. Reported after every batch.</summary>
/// <param name="Done">Tiles embedded so far.</param>
/// <param name="Total">Tiles in the run.</param>
/// <param name="Elapsed">Time since the run started.</param>
public readonly record struct TileProgress(int Done, int Total, TimeSpan Elapsed)
{
    /// <summary>Tiles per second so far.</summary>
    public double TilesPerSecond => Elapsed.TotalSeconds > 0 ? Done / Elapsed.TotalSeconds : 0;
}

/// <summary>
/// One batch of <see cref="TileEncoder.EmbedBatchesAsync"/>: tiles [<see cref="Start"/>, Start + <see cref="Count"/>)
/// of the source, their embeddings as plain floats (no tensors to dispose).
/// </summary>
public sealed class TileEmbeddingBatch
{
    private readonly float[] _embeddings;

    internal TileEmbeddingBatch(int start, int count, int dim, float[] embeddings, TimeSpan elapsed, int total)
    {
        Start = start;
        Count = count;
        Dim = dim;
        _embeddings = embeddings;
        Progress = new TileProgress(start + count, total, elapsed);
    }

    /// <summary>Index in the source of the first tile of the batch.</summary>
    public int Start { get; }

    /// <summary>Tiles in the batch.</summary>
    public int Count { get; }

    /// <summary>Width of one embedding.</summary>
    public int Dim { get; }

    /// <summary>The run's progress once this batch was embedded.</summary>
    public TileProgress Progress { get; }

    /// <summary>Every embedding of the batch, row-major [Count, Dim].</summary>
    public ReadOnlyMemory<float> Embeddings => _embeddings;

    /// <summary>The embedding of tile <see cref="Start"/> + <paramref name="index"/>.</summary>
    public ReadOnlyMemory<float> this[int index] => index >= 0 && index < Count
        ? _embeddings.AsMemory(index * Dim, Dim)
        : throw new ArgumentOutOfRangeException(nameof(index), index, $"the batch holds {Count} tiles");
}
