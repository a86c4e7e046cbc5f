namespace GigaPath.Training;

/// <summary>
/// The tile features of one slide as a downstream head consumes them: <see cref="Features"/> is [Count, Dim] row-major,
/// <see cref="Coords"/> is [Count, 2] (x, y) in the pixel units the pipeline wrote (level 0; null when the file has
/// none), <see cref="SlideEmbedding"/> is a stored slide-level vector when there is one, and
/// <see cref="Contextual"/> the slide encoder's contextualised tile embeddings [Count, ContextualDim] when stored or computed.
/// </summary>
internal sealed record SlideBag(string SlideId, string Path, float[] Features, int Count, int Dim, float[]? Coords, float[]? SlideEmbedding)
{
    public float[]? Contextual { get; init; }
    public int ContextualDim { get; init; }

    /// <summary>
    /// The coordinates to give the slide encoder: the file's tiling-resolution <c>coords_tiling</c> when it has them
    /// (what the whole-slide pipeline feeds the encoder), else <see cref="Coords"/>.
    /// </summary>
    public float[]? EncoderCoords
    {
        get => _encoderCoords ?? Coords;
        init => _encoderCoords = value;
    }

    private readonly float[]? _encoderCoords;

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
