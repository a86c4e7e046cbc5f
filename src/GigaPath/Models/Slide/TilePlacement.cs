using System.Globalization;

namespace GigaPath.Models.Slide;

/// <summary>Which of a tile-feature file's facts placed its tiles on the slide encoder's grid (<see cref="TilePlacement.Rule"/>).</summary>
public enum TilePlacementRule
{
    /// <summary>The file's tiling-resolution <c>coords_tiling</c> (as the whole-slide pipeline writes), used as they are.</summary>
    TilingCoordinates,

    /// <summary>Safetensors <c>coords</c> not known to be level-0, used as they are (as prov-gigapath's pipeline passes tile-name coordinates).</summary>
    CoordinatesAsGiven,

    /// <summary>Level-0 <c>coords</c> divided by TRIDENT's <c>patch_size_level0</c> attribute.</summary>
    TridentPatchSize,

    /// <summary>Level-0 <c>coords</c> divided by CLAM's <c>patch_size</c> × int(<c>downsample</c>) at <c>patch_level</c>.</summary>
    ClamPatchSize,

    /// <summary>Level-0 <c>coords</c> divided by the caller's level-0 tile size (the <c>level0TileSize</c> argument).</summary>
    GivenLevel0TileSize,
}

/// <summary>
/// How the slide encoder placed the tiles of a tile-feature file (<see cref="SlideEmbeddings.Placement"/>): the rule,
/// and for level-0 coordinates the grid step in level-0 pixels and the facts that gave it. <see cref="ToString"/> is
/// the text recorded in output metadata (<c>positions</c>), e.g. <c>patch_size_level0 = 512 (TRIDENT): level-0 coords / 512</c>.
/// </summary>
public sealed record TilePlacement
{
    internal TilePlacement(TilePlacementRule rule, double? level0Step = null, string? stepSource = null)
    {
        Rule = rule;
        Level0Step = level0Step;
        StepSource = stepSource;
    }

    /// <summary>The rule that placed the tiles.</summary>
    public TilePlacementRule Rule { get; }

    /// <summary>Level-0 pixels per grid cell that the coordinates were divided by; null when they were used as they are.</summary>
    public double? Level0Step { get; }

    /// <summary>
    /// The attributes or argument that gave <see cref="Level0Step"/>, with their values (e.g. <c>patch_size 256 ×
    /// downsample 2 at patch_level 1 (CLAM)</c>); null when the coordinates were used as they are.
    /// </summary>
    public string? StepSource { get; }

    /// <summary>The placement as recorded in output metadata (<c>positions</c>).</summary>
    public override string ToString() => Rule switch
    {
        TilePlacementRule.TilingCoordinates => "coords_tiling",
        TilePlacementRule.CoordinatesAsGiven => "coords (used as given, as prov-gigapath's pipeline passes tile-name coordinates)",
        _ => $"{StepSource}: level-0 coords / {Format(Level0Step ?? 0)}",
    };

    internal static string Format(double v) => v.ToString("0.####", CultureInfo.InvariantCulture);
}
