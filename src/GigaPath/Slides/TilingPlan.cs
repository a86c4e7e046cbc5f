namespace GigaPath.Slides;

/// <summary>
/// One tile of a plan. (<see cref="Level0X"/>, <see cref="Level0Y"/>) is its top-left corner in level-0 pixels (what
/// CLAM/TRIDENT <c>coords</c> hold); (<see cref="TilingX"/>, <see cref="TilingY"/>) is the same corner in pixels at
/// the tiling resolution, grid index × tile size, so neighbours are exactly one tile size apart: these are the
/// coordinates Prov-GigaPath's slide encoder expects (its maintainers, prov-gigapath issue #116).
/// </summary>
internal sealed record TileLocation(
    int Index, long Level0X, long Level0Y, int GridX, int GridY, int TilingX, int TilingY, float TissueFraction);

/// <summary>Where the slide's resolution came from.</summary>
internal enum MppSource { Metadata, Override }

/// <summary>
/// How one slide is read into tiles: the level read, the size read there (<see cref="ReadSize"/>, resampled to
/// <see cref="TileSize"/> when <see cref="Resampled"/>), the grid and the kept tiles in row-major order (y, then x).
/// Only whole tiles are planned: a partial column or row at the right or bottom edge is skipped.
/// </summary>
internal sealed record TilingPlan
{
    public required string SlidePath { get; init; }

    /// <summary>Micrometres per level-0 pixel used for planning.</summary>
    public required double SlideMpp { get; init; }

    public required MppSource MppSource { get; init; }
    public required double TargetMpp { get; init; }
    public required int TileSize { get; init; }

    /// <summary>The pyramid level tiles are read from and its downsample and resolution.</summary>
    public required int Level { get; init; }

    public required double LevelDownsample { get; init; }
    public required double LevelMpp { get; init; }

    /// <summary>Side of the square read at <see cref="Level"/> for one tile.</summary>
    public required int ReadSize { get; init; }

    /// <summary>True when reads are resized (Pillow-exact bicubic) from <see cref="ReadSize"/> to <see cref="TileSize"/>.</summary>
    public required bool Resampled { get; init; }

    /// <summary>The tiles' actual resolution, ReadSize × LevelMpp / TileSize (the target up to the tolerance and
    /// rounding of the read size).</summary>
    public double TileMpp => ReadSize * LevelMpp / TileSize;

    /// <summary>Level-0 pixels from one tile to the next.</summary>
    public double Level0Step => ReadSize * LevelDownsample;

    /// <summary>Whole tiles across and down the slide (all candidates, tissue or not).</summary>
    public required int GridColumns { get; init; }

    public required int GridRows { get; init; }

    public required TissueMethod TissueMethod { get; init; }
    public required double MinTissueFraction { get; init; }

    /// <summary>The mask the tiles were chosen by (null for <see cref="Slides.TissueMethod.None"/>).</summary>
    public required TissueMask? Mask { get; init; }

    /// <summary>Kept tiles, row-major; <see cref="TileLocation.Index"/> is the position in this list.</summary>
    public required IReadOnlyList<TileLocation> Tiles { get; init; }
}
