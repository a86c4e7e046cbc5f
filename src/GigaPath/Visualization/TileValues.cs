namespace GigaPath.Visualization;

/// <summary>
/// One value per tile with the tile's level-0 coordinates, for <see cref="SlideMap.DrawValues"/>: a head's attention,
/// a score, a prediction. Read one from a file with <see cref="Read"/> or make one in code.
/// </summary>
public sealed class TileValues
{
    /// <summary>Values <paramref name="values"/> of the tiles at <paramref name="coords"/> (x0, y0, x1, y1, …), copied.</summary>
    /// <param name="coords">[N, 2] row-major: each tile's top-left corner in level-0 pixels.</param>
    /// <param name="values">N values, one per tile, in the same order.</param>
    /// <param name="name">What the values are, for messages and legends.</param>
    /// <exception cref="ArgumentException">The counts differ, or there are no tiles.</exception>
    public TileValues(IReadOnlyList<float> coords, IReadOnlyList<float> values, string name = "value")
    {
        ArgumentNullException.ThrowIfNull(coords);
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(name);
        if (coords.Count != 2 * values.Count)
            throw new ArgumentException($"{coords.Count} coordinates for {values.Count} values; expected two (x, y) per value", nameof(coords));
        if (values.Count == 0) throw new ArgumentException("no tiles", nameof(values));
        Coords = coords.ToArray();
        Values = values.ToArray();
        Name = name;
    }

    /// <summary>Each tile's (x, y), row-major [N, 2].</summary>
    public IReadOnlyList<float> Coords { get; }

    /// <summary>One value per tile.</summary>
    public IReadOnlyList<float> Values { get; }

    /// <summary>What the values are: the column or tensor they were read from.</summary>
    public string Name { get; }

    /// <summary>Number of tiles.</summary>
    public int Count => Values.Count;

    /// <summary>
    /// Reads per-tile values as <c>gigapath predict</c> writes attention: a CSV whose header names <c>x</c>, <c>y</c>
    /// and the value column, or a safetensors file with <c>coords</c> [N, 2] and a 1-D value tensor.
    /// </summary>
    /// <param name="path">The CSV or .safetensors file.</param>
    /// <param name="column">The column or tensor holding the values; null for <c>attention</c> when present, else the
    /// last CSV column or the only 1-D tensor.</param>
    /// <exception cref="GigaPathException">The file is missing or malformed; the message names it.</exception>
    public static TileValues Read(string path, string? column = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var (coords, values, name) = ScalarFile.Read(path, column);
        return new TileValues(coords, values, name);
    }

    /// <summary>
    /// The values replaced by their rank fraction in [0, 1] (ties share the mean rank): for skewed scores such as
    /// attention, whose few large values would otherwise leave the rest of the map one colour.
    /// </summary>
    public TileValues ToRanks() => new(Coords, FeatureMaps.Ranks(Values), Name);
}
