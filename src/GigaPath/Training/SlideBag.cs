namespace GigaPath.Training;

/// <summary>
/// The tile features of one slide as a downstream head consumes them: <see cref="Features"/> is [Count, Dim] row-major,
/// <see cref="Coords"/> is [Count, 2] (x, y) in the pixel units the pipeline wrote (level 0; null when the file has
/// none), <see cref="SlideEmbedding"/> is a stored slide-level vector when there is one, and
/// <see cref="Contextual"/> the slide encoder's contextualised tile embeddings [Count, ContextualDim] when stored or computed.
/// </summary>
public sealed record SlideBag(string SlideId, string Path, float[] Features, int Count, int Dim, float[]? Coords, float[]? SlideEmbedding)
{
    public float[]? Contextual { get; init; }
    public int ContextualDim { get; init; }

    /// <summary>
    /// The positions to give the slide encoder, at the tiling resolution (the file's <c>coords_tiling</c>, or its level-0
    /// <c>coords</c> turned into grid positions by its own metadata); null when the file does not say how
    /// (<see cref="PositionsError"/> then says why).
    /// </summary>
    public float[]? EncoderCoords { get; init; }

    /// <summary>How <see cref="EncoderCoords"/> were found (see <c>TilePositions</c>), for reports.</summary>
    public string? Positions { get; init; }

    /// <summary>Why there are no <see cref="EncoderCoords"/>, when there are none.</summary>
    public string? PositionsError { get; init; }

    /// <summary><see cref="EncoderCoords"/>, or an error saying why the slide encoder cannot be given positions.</summary>
    public float[] RequireEncoderCoords() =>
        EncoderCoords ?? throw new GigaPathException(PositionsError ?? $"{Path}: no coords; the slide encoder needs each tile's (x, y)");

    /// <summary>
    /// The vector the linear probe sees: the stored slide embedding when present (and <paramref name="preferStored"/>),
    /// else the mean of the tile features.
    /// </summary>
    public float[] SlideVector(bool preferStored)
    {
        if (preferStored && SlideEmbedding is not null) return SlideEmbedding;
        var mean = new double[Dim];
        for (int i = 0; i < Count; i++)
            for (int d = 0; d < Dim; d++)
                mean[d] += Features[(long)i * Dim + d];
        return mean.Select(v => (float)(v / Count)).ToArray();
    }
}
