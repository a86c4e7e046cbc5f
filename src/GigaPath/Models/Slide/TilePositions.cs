using System.Globalization;
using GigaPath.IO;

namespace GigaPath.Models.Slide;

/// <summary>
/// The slide encoder's positions for the tiles of a feature file, and the rule that gave them (recorded in outputs).
/// </summary>
/// <param name="TilingCoords">[N, 2] (x, y) in pixels at the tiling resolution: grid index × the encoder's tile size.</param>
/// <param name="Placement">Which of the file's facts gave the grid.</param>
internal sealed record ResolvedPositions(double[] TilingCoords, TilePlacement Placement)
{
    /// <summary>The placement as recorded in outputs, e.g. <c>patch_size_level0 = 512 (TRIDENT): level-0 coords / 512</c>.</summary>
    public string Rule => Placement.ToString();
}

/// <summary>
/// Turns a tile-feature file's coordinates into slide-encoder positions with the file's own metadata. Prov-GigaPath's
/// encoder takes positions at the tiling resolution (prov-gigapath issue #116: grid index × 256), while CLAM and TRIDENT
/// store level-0 pixels, which on a 40x slide tiled at 20x are twice as far apart. In order:
/// <list type="number">
/// <item><c>coords_tiling</c> (our files): used as they are.</item>
/// <item><c>patch_size_level0</c> (TRIDENT's attribute on <c>coords</c>): grid = floor(coords / patch_size_level0), as
/// TRIDENT's own slide encoders compute it.</item>
/// <item><c>patch_size</c> at <c>patch_level</c> (CLAM's attributes): the level-0 step is patch_size × int(downsample),
/// as CLAM's <c>process_contour</c> lays its grid (<c>downsample</c> may be left out when <c>patch_level</c> is 0).</item>
/// <item>The level-0 tile size given by the caller (<c>level0TileSize</c>).</item>
/// <item>Safetensors <c>coords</c> (not known to be level-0): used as they are, as prov-gigapath's
/// <c>run_inference_with_slide_encoder</c> passes the coordinates in its tile names.</item>
/// </list>
/// Level-0 coordinates (HDF5) with none of these are an error naming what is missing; they are never used as positions.
/// </summary>
internal static class TilePositions
{
    public const string TilingRule = "coords_tiling";

    /// <summary>Resolves the positions of <paramref name="tiles"/> for an encoder whose grid step is <paramref name="tileSize"/>.</summary>
    /// <param name="tiles">The slide's tile features with their coordinates and file attributes.</param>
    /// <param name="tileSize">The encoder's grid step in pixels.</param>
    /// <param name="level0TileSize">The tile width in level-0 pixels when the file does not say (<c>level0TileSize</c>).</param>
    public static ResolvedPositions Resolve(TileFeatures tiles, int tileSize, double? level0TileSize = null)
    {
        const string option = OptionNames.Level0TileSize;
        if (tiles.TilingCoords is { } tiling)
            return new ResolvedPositions(tiling, new TilePlacement(TilePlacementRule.TilingCoordinates));
        var coords = tiles.Coords
            ?? throw new GigaPathException($"{tiles.Source}: no coords; the slide encoder needs each tile's (x, y)");
        var fromFile = Level0Step(tiles.Attributes);
        if (fromFile is { } f && level0TileSize is { } g && Math.Abs(f.Step - g) > 1e-9)
            throw new GigaPathException($"{tiles.Source}: {option} {F(g)} contradicts the file's own {f.Source}; leave {option} out to use the file's") { Option = option };
        if (fromFile is null && level0TileSize is null && !tiles.CoordsAreLevel0)
            return new ResolvedPositions(coords, new TilePlacement(TilePlacementRule.CoordinatesAsGiven));
        var (step, source, rule) = fromFile ?? (level0TileSize is { } given
            ? (Positive(given, option, tiles.Source), $"given level-0 tile size {F(given)}", TilePlacementRule.GivenLevel0TileSize)
            : throw new GigaPathException(
                $"{tiles.Source}: 'coords' are level-0 pixels, and the file has none of the attributes that turn them into tile-grid positions " +
                $"({MissingDescription(tiles.Attributes)}); give the width of one tile in level-0 pixels as {option}, " +
                "e.g. 512 for 256-px tiles at 0.5 µm/px cut from a 0.25 µm/px slide") { Option = option });
        var result = new double[coords.Length];
        for (int i = 0; i < coords.Length; i++)
        {
            if (!double.IsFinite(coords[i]))
                throw new GigaPathException($"{tiles.Source}: tile {i / 2} has a non-finite coordinate ({coords[i]})");
            // The small slack keeps rounded level-0 positions of a non-integer step (e.g. 513.2 px) on their own cell.
            result[i] = Math.Floor(coords[i] / step + 1e-6) * tileSize;
        }
        return new ResolvedPositions(result, new TilePlacement(rule, step, source));
    }

    /// <summary>The tile step in level-0 pixels from the file's attributes (see <see cref="PatchAttributes.Level0Step"/>).</summary>
    public static (double Step, string Source, TilePlacementRule Rule)? Level0Step(IReadOnlyDictionary<string, object> attributes) =>
        PatchAttributes.Level0Step(attributes);

    private static string MissingDescription(IReadOnlyDictionary<string, object> a) =>
        "missing: " + string.Join(", ", PatchAttributes.MissingForLevel0Step(a).Prepend(TilingRule));

    private static double Positive(double value, string flag, string source) =>
        double.IsFinite(value) && value > 0 ? value : throw new GigaPathException($"{source}: {flag} must be a positive number of level-0 pixels, got {F(value)}");

    /// <summary>A numeric attribute (see <see cref="PatchAttributes.Number"/>).</summary>
    internal static double? Number(IReadOnlyDictionary<string, object> attributes, string key) => PatchAttributes.Number(attributes, key);

    private static string F(double v) => TilePlacement.Format(v);
}
