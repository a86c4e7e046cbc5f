namespace GigaPath.Models.Slide;

/// <summary>
/// Tile embeddings of one slide with their positions: the value passed from tile encoding to the slide encoder,
/// fine-tuning and the output files.
/// </summary>
/// <param name="Features">Row-major [Count, Dim] embeddings.</param>
/// <param name="Count">Number of tiles N.</param>
/// <param name="Dim">Embedding width D.</param>
/// <param name="Coords">Row-major [Count, 2] level-0 pixel (x, y) of each tile, or null when the file has none.</param>
/// <param name="Attributes">File attributes (HDF5 attributes of the root and the coords dataset, or safetensors metadata).</param>
/// <param name="Source">Where the features came from, for messages.</param>
public sealed record TileFeatures(float[] Features, int Count, int Dim, double[]? Coords,
    IReadOnlyDictionary<string, object> Attributes, string Source = "tile features")
{
    /// <summary>
    /// Row-major [Count, 2] (x, y) of each tile in pixels at the tiling resolution (grid index × tile size, so
    /// neighbours are one tile apart), or null. This is what Prov-GigaPath's slide encoder expects (prov-gigapath
    /// issue #116); it differs from the level-0 <see cref="Coords"/> whenever tiles were not read at level 0's
    /// resolution (e.g. a 40x slide tiled at 0.5 µm/px). HDF5 dataset <c>coords_tiling</c>. Files without it (CLAM,
    /// TRIDENT) get their positions from their attributes (<see cref="TilePositions"/>).
    /// </summary>
    public double[]? TilingCoords { get; init; }

    /// <summary>
    /// True when <see cref="Coords"/> are certainly level-0 pixels (HDF5 files: CLAM and TRIDENT define them so), so they
    /// are never taken as slide-encoder positions without the attributes that convert them. Safetensors <c>coords</c>
    /// without such attributes are the positions themselves, as prov-gigapath's pipeline passes tile-name coordinates.
    /// </summary>
    public bool CoordsAreLevel0 { get; init; }

    /// <summary>Checks that the arrays match the stated shape; the message names <see cref="Source"/>.</summary>
    public TileFeatures Validate()
    {
        if (Count < 0 || Dim <= 0)
            throw new GigaPathException($"{Source}: invalid shape [{Count}, {Dim}]");
        if (Features.LongLength != (long)Count * Dim)
            throw new GigaPathException($"{Source}: features hold {Features.LongLength} values, expected {Count} × {Dim}");
        if (Coords is not null && Coords.LongLength != 2L * Count)
            throw new GigaPathException($"{Source}: coords hold {Coords.LongLength / 2.0} rows, expected one (x, y) per tile ({Count})");
        if (TilingCoords is not null && TilingCoords.LongLength != 2L * Count)
            throw new GigaPathException($"{Source}: coords_tiling hold {TilingCoords.LongLength / 2.0} rows, expected one (x, y) per tile ({Count})");
        return this;
    }

    /// <summary>
    /// The tile encoder that made the features when the file says so: our files' <c>encoder</c> attribute, else
    /// TRIDENT's layout (features of encoder E in a folder named <c>features_E</c>); null when unknown.
    /// </summary>
    public string? TileEncoder
    {
        get
        {
            if (Attributes.TryGetValue("encoder", out var value) && value is string name && name.Length > 0)
                return name;
            var folder = Path.GetFileName(Path.GetDirectoryName(Source) ?? "");
            const string prefix = "features_";
            if (folder is not null && folder.StartsWith(prefix, StringComparison.Ordinal)
                && Tile.TileEncoderKind.All.FirstOrDefault(k => k.Name == folder[prefix.Length..]) is { } kind)
                return kind.Name;
            return null;
        }
    }

    /// <summary>
    /// Throws, naming <see cref="Source"/>, when the slide has no tiles or a feature value is NaN or infinite: what
    /// every consumer of a slide's features (embed-slide and /score/slide, predict, finetune, pca) refuses rather than
    /// answer with a result computed from nothing or from NaN.
    /// </summary>
    public TileFeatures RequireUsable()
    {
        if (Count == 0) throw NoTiles(Source, Dim);
        for (long i = 0; i < Features.LongLength; i++)
            if (!float.IsFinite(Features[i]))
                throw new GigaPathException($"{Source}: tile {i / Dim} holds a non-finite feature value ({Features[i]}) at feature {i % Dim}");
        return this;
    }

    /// <summary>The refusal of a slide without tiles (also raised from a file's declared shape, before reading it).</summary>
    internal static GigaPathException NoTiles(string source, int dim) =>
        new($"{source}: holds no tiles (features [0, {dim}]); a slide needs at least one tile");

    /// <summary>The embedding of tile <paramref name="i"/>.</summary>
    public ReadOnlySpan<float> Row(int i) => Features.AsSpan(i * Dim, Dim);
}
