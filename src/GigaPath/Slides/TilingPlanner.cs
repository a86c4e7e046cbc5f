using System.Globalization;
using GigaPath.Imaging;

namespace GigaPath.Slides;

/// <summary>
/// Plans a slide's tiles: resolves its resolution, picks the pyramid level to read, lays the grid at the target
/// resolution and keeps the tiles with tissue. <see cref="ReadTile"/> then reads any planned tile, from any thread.
/// </summary>
public static class TilingPlanner
{
    /// <summary>
    /// Plans <paramref name="slide"/>'s tiles. The slide's resolution is <see cref="TilingOptions.SlideMpp"/> when given,
    /// else its metadata. Throws <see cref="GigaPathException"/> when the resolution is unknown or too coarse, the slide
    /// is smaller than one tile, the grid exceeds <see cref="TilingOptions.MaxGridSide"/> or no tile holds tissue.
    /// </summary>
    /// <param name="slide">An open slide (<see cref="SlideOpener.Open"/>).</param>
    /// <param name="options">Tile size, resolution and tissue rule.</param>
    public static TilingPlan Plan(ISlide slide, TilingOptions options)
    {
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var (slideMpp, source) = ResolveMpp(slide, options);
        var (level, readSize, resampled) = ChooseLevel(slide, options, slideMpp);
        double ds = slide.LevelDownsample(level);
        double levelMpp = slideMpp * ds;
        var (lw, lh) = slide.LevelDimensions(level);
        int columns = (int)Math.Min(int.MaxValue, lw / readSize), rows = (int)Math.Min(int.MaxValue, lh / readSize);
        if (columns == 0 || rows == 0)
            throw new GigaPathException(
                $"{slide.Path}: the slide ({Size(slide.LevelDimensions(0))} level-0 pixels) is smaller than one {options.TileSize}-pixel tile at {F(options.TargetMpp)} µm/px");
        if (options.MaxGridSide is { } max && (columns > max || rows > max))
            throw new GigaPathException(
                $"{slide.Path}: the tile grid is {columns} x {rows} tiles at {F(options.TargetMpp)} µm/px, larger than the slide encoder's {max} x {max} position grid; " +
                $"use a coarser {OptionNames.TargetMpp} or a larger tile size, or tile without the slide encoder");

        double step0 = readSize * ds;
        TissueMask? mask = null;
        if (options.TissueMethod != TissueMethod.None)
        {
            // Cells divide a tile exactly, so a tile's fraction is a sum over whole cells; at least one level-0 pixel each.
            int cellsPerTile = (int)Math.Clamp(Math.Round(step0 * slideMpp / options.MaskMpp), 1, Math.Max(1, Math.Floor(step0)));
            mask = TissueDetector.Detect(slide, options.TissueMethod, step0 / cellsPerTile, cellsPerTile);
        }

        var tiles = new List<TileLocation>();
        for (int gy = 0; gy < rows; gy++)
            for (int gx = 0; gx < columns; gx++)
            {
                float fraction = mask?.TileFraction(gx, gy) ?? float.NaN;
                if (mask is not null && !(fraction > options.MinTissueFraction)) continue;
                tiles.Add(new TileLocation(tiles.Count, (long)Math.Round(gx * step0), (long)Math.Round(gy * step0),
                    gx, gy, gx * options.TileSize, gy * options.TileSize, fraction));
            }
        if (tiles.Count == 0)
            throw new GigaPathException(
                $"{slide.Path}: no tissue found: none of the {columns * rows} tiles at {F(options.TargetMpp)} µm/px has a tissue fraction above " +
                $"{F(options.MinTissueFraction)} ({options.TissueMethod}, threshold {F(mask!.Threshold)}); lower the minimum tissue fraction or choose another tissue method");

        return new TilingPlan
        {
            SlidePath = slide.Path,
            SlideMpp = slideMpp,
            MppSource = source,
            TargetMpp = options.TargetMpp,
            TileSize = options.TileSize,
            Level = level,
            LevelDownsample = ds,
            LevelMpp = levelMpp,
            ReadSize = readSize,
            Resampled = resampled,
            GridColumns = columns,
            GridRows = rows,
            TissueMethod = options.TissueMethod,
            MinTissueFraction = options.MinTissueFraction,
            Mask = mask,
            Tiles = tiles,
        };
    }

    /// <summary>The tile's pixels at the tiling resolution: the planned read, resized with Pillow-exact bicubic when
    /// the level read is not at the target resolution. Thread-safe.</summary>
    /// <param name="slide">The slide <paramref name="plan"/> was made for.</param>
    /// <param name="plan">The slide's plan.</param>
    /// <param name="tile">One of the plan's <see cref="TilingPlan.Tiles"/>.</param>
    public static RgbImage ReadTile(ISlide slide, TilingPlan plan, TileLocation tile)
    {
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(tile);
        var region = slide.ReadRegion(tile.Level0X, tile.Level0Y, plan.Level, plan.ReadSize, plan.ReadSize);
        return plan.Resampled ? PillowResample.ResizeBicubic(region, plan.TileSize, plan.TileSize) : region;
    }

    /// <summary>The override, else the metadata; square pixels are required.</summary>
    internal static (double Mpp, MppSource Source) ResolveMpp(ISlide slide, TilingOptions options)
    {
        if (options.SlideMpp is { } given) return (given, MppSource.Override);
        var (x, y) = (slide.MppX, slide.MppY);
        if (x is null && y is null)
            throw new GigaPathException(
                $"{slide.Path}: no MPP metadata (openslide.mpp-x/mpp-y absent), so its resolution is unknown; pass {OptionNames.SlideMpp} (micrometres per level-0 pixel)");
        double mx = x ?? y!.Value, my = y ?? x!.Value;
        if (Math.Abs(mx - my) > 0.01 * Math.Max(mx, my))
            throw new GigaPathException(
                $"{slide.Path}: pixels are not square (mpp-x {F(mx)}, mpp-y {F(my)} µm/px); pass {OptionNames.SlideMpp} to tile it as square anyway");
        return ((mx + my) / 2, MppSource.Metadata);
    }

    /// <summary>
    /// The coarsest level not coarser than the target (within the tolerance). Within the tolerance of the target it is
    /// read tile-for-tile; finer levels are read larger, round(tile × target / levelMpp), and resized down.
    /// </summary>
    internal static (int Level, int ReadSize, bool Resampled) ChooseLevel(ISlide slide, TilingOptions options, double slideMpp)
    {
        double target = options.TargetMpp, tol = options.MppTolerance;
        int level = -1;
        for (int i = 0; i < slide.LevelCount; i++)
            if (slideMpp * slide.LevelDownsample(i) <= target * (1 + tol) && (level < 0 || slide.LevelDownsample(i) > slide.LevelDownsample(level)))
                level = i;
        if (level < 0)
            throw new GigaPathException(
                $"{slide.Path}: its finest level is {F(slideMpp)} µm/px, coarser than the target {F(target)} µm/px; tiles would have to be " +
                $"upsampled. Pass a {OptionNames.TargetMpp} at least as coarse as the slide (or {OptionNames.SlideMpp} if its metadata is wrong)");
        double levelMpp = slideMpp * slide.LevelDownsample(level);
        if (Math.Abs(levelMpp - target) <= tol * target) return (level, options.TileSize, false);
        int readSize = (int)Math.Round(options.TileSize * target / levelMpp, MidpointRounding.AwayFromZero);
        return (level, readSize, readSize != options.TileSize);
    }

    private static string F(double v) => v.ToString("0.####", CultureInfo.InvariantCulture);

    private static string Size((long W, long H) d) => $"{d.W}x{d.H}";
}
