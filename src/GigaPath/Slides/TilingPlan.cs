namespace GigaPath.Slides;

/// <summary>
/// One tile of a plan. (<see cref="Level0X"/>, <see cref="Level0Y"/>) is its top-left corner in level-0 pixels (what
/// CLAM/TRIDENT <c>coords</c> hold); (<see cref="TilingX"/>, <see cref="TilingY"/>) is the same corner in pixels at
/// the tiling resolution, grid index × tile size, so neighbours are exactly one tile size apart: these are the
/// coordinates Prov-GigaPath's slide encoder expects (its maintainers, prov-gigapath issue #116).
/// </summary>
public sealed record TileLocation
{
    internal TileLocation(int index, long level0X, long level0Y, int gridX, int gridY, int tilingX, int tilingY, float tissueFraction)
    {
        Index = index;
        Level0X = level0X;
        Level0Y = level0Y;
        GridX = gridX;
        GridY = gridY;
        TilingX = tilingX;
        TilingY = tilingY;
        TissueFraction = tissueFraction;
    }

    /// <summary>Position in <see cref="TilingPlan.Tiles"/> (row-major over the kept tiles).</summary>
    public int Index { get; }

    /// <summary>Left edge in level-0 pixels.</summary>
    public long Level0X { get; }

    /// <summary>Top edge in level-0 pixels.</summary>
    public long Level0Y { get; }

    /// <summary>Column in the tile grid.</summary>
    public int GridX { get; }

    /// <summary>Row in the tile grid.</summary>
    public int GridY { get; }

    /// <summary>Left edge in pixels at the tiling resolution (<see cref="GridX"/> × tile size).</summary>
    public int TilingX { get; }

    /// <summary>Top edge in pixels at the tiling resolution (<see cref="GridY"/> × tile size).</summary>
    public int TilingY { get; }

    /// <summary>Share of the tile covered by tissue (0 to 1); NaN without tissue detection.</summary>
    public float TissueFraction { get; }
}

/// <summary>Where the slide's resolution came from.</summary>
public enum MppSource
{
    /// <summary>The slide file's own metadata.</summary>
    Metadata,

    /// <summary>Given by the caller (<see cref="TilingOptions.SlideMpp"/> or a job's MPP).</summary>
    Override,
}

/// <summary>
/// How one slide is read into tiles: the level read, the size read there (<see cref="ReadSize"/>, resampled to
/// <see cref="TileSize"/> when <see cref="Resampled"/>), the grid and the kept tiles in row-major order (y, then x).
/// Only whole tiles are planned: a partial column or row at the right or bottom edge is skipped. Made by
/// <see cref="TilingPlanner.Plan"/>.
/// </summary>
public sealed record TilingPlan
{
    internal TilingPlan()
    {
    }

    /// <summary>The slide file planned.</summary>
    public string SlidePath { get; internal init; } = "";

    /// <summary>Micrometres per level-0 pixel used for planning.</summary>
    public double SlideMpp { get; internal init; }

    /// <summary>Where <see cref="SlideMpp"/> came from.</summary>
    public MppSource MppSource { get; internal init; }

    /// <summary>Micrometres per pixel asked for.</summary>
    public double TargetMpp { get; internal init; }

    /// <summary>Tile side in pixels at <see cref="TargetMpp"/>.</summary>
    public int TileSize { get; internal init; }

    /// <summary>The pyramid level tiles are read from.</summary>
    public int Level { get; internal init; }

    /// <summary>Level-0 pixels per pixel of <see cref="Level"/>.</summary>
    public double LevelDownsample { get; internal init; }

    /// <summary>Micrometres per pixel of <see cref="Level"/>.</summary>
    public double LevelMpp { get; internal init; }

    /// <summary>Side of the square read at <see cref="Level"/> for one tile.</summary>
    public int ReadSize { get; internal init; }

    /// <summary>True when reads are resized (Pillow-exact bicubic) from <see cref="ReadSize"/> to <see cref="TileSize"/>.</summary>
    public bool Resampled { get; internal init; }

    /// <summary>The tiles' actual resolution, ReadSize × LevelMpp / TileSize (the target up to the tolerance and
    /// rounding of the read size).</summary>
    public double TileMpp => ReadSize * LevelMpp / TileSize;

    /// <summary>Level-0 pixels from one tile to the next.</summary>
    public double Level0Step => ReadSize * LevelDownsample;

    /// <summary>Whole tiles across the slide (all candidates, tissue or not).</summary>
    public int GridColumns { get; internal init; }

    /// <summary>Whole tiles down the slide (all candidates, tissue or not).</summary>
    public int GridRows { get; internal init; }

    /// <summary>How tissue was detected.</summary>
    public TissueMethod TissueMethod { get; internal init; }

    /// <summary>Tiles were kept when their tissue fraction was strictly greater than this.</summary>
    public double MinTissueFraction { get; internal init; }

    /// <summary>
    /// The Otsu threshold tissue detection chose, on its method's 0–255 scale (luminance or saturation); NaN when the
    /// scan had nothing to separate, null without tissue detection.
    /// </summary>
    public double? TissueThreshold => Mask?.Threshold;

    /// <summary>The mask the tiles were chosen by (null for <see cref="Slides.TissueMethod.None"/>).</summary>
    internal TissueMask? Mask { get; init; }

    /// <summary>Kept tiles, row-major; <see cref="TileLocation.Index"/> is the position in this list.</summary>
    public IReadOnlyList<TileLocation> Tiles { get; internal init; } = [];
}
