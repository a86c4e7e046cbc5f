using System.Globalization;
using GigaPath.Models.Slide;
using GigaPath.Runtime;
using GigaPath.Slides;

namespace GigaPath.IO;

/// <summary>
/// The patch attributes of a tile-feature file (docs/h5-attributes.md), one definition for the writer and the readers:
/// the set the whole-slide pipeline writes, which means the same thing to CLAM and TRIDENT, and how a reader finds the
/// level-0 tile step in a file's attributes (TRIDENT's, else CLAM's).
/// </summary>
internal static class PatchAttributes
{
    /// <summary>Side of the square read at <see cref="PatchLevel"/> for one tile (CLAM).</summary>
    public const string PatchSize = "patch_size";

    /// <summary>The pyramid level tiles were read from (CLAM).</summary>
    public const string PatchLevel = "patch_level";

    /// <summary>Level-0 pixels from one tile to the next (TRIDENT).</summary>
    public const string PatchSizeLevel0 = "patch_size_level0";

    /// <summary>The level's downsample, as an (x, y) pair (CLAM).</summary>
    public const string Downsample = "downsample";

    /// <summary>The slide's level-0 width in pixels.</summary>
    public const string Level0Width = "level0_width";

    /// <summary>The slide's level-0 height in pixels.</summary>
    public const string Level0Height = "level0_height";

    /// <summary>What the coordinates of a pipeline output mean; documented in every manifest and in the HDF5 attributes.</summary>
    public const string CoordinateContract =
        "coords: level-0 pixel (x, y) of each tile's top-left corner; coords_tiling: the same corner in pixels at the " +
        "tiling resolution (grid index x tile size, neighbours one tile apart), the coordinates given to the slide " +
        "encoder; tiles in row-major order";

    /// <summary>
    /// The attributes the whole-slide pipeline writes for <paramref name="slideId"/> tiled by <paramref name="plan"/>,
    /// in the order they are written, with the <see cref="Provenance"/> of the tile encoder. <c>patch_size</c> is what is read at <c>patch_level</c> (CLAM's
    /// Whole_Slide_Bag_FP reads exactly that; <c>custom_downsample</c> says how much it was then shrunk to
    /// <c>tile_size</c>), and TRIDENT's magnifications are those of the pixels read, so its patcher reads the same
    /// region (patch_size × level0_magnification / target_magnification level-0 pixels).
    /// </summary>
    public static Dictionary<string, object> ForTiling(string slideId, ISlide slide, TilingPlan plan, string encoder, string tileModelSha256)
    {
        var (lw, lh) = slide.LevelDimensions(plan.Level);
        var (w0, h0) = slide.LevelDimensions(0);
        double customDownsample = (double)plan.ReadSize / plan.TileSize;
        var attributes = new Dictionary<string, object>
        {
            ["name"] = slideId,
            [PatchSize] = plan.ReadSize,
            [PatchLevel] = plan.Level,
            ["custom_downsample"] = customDownsample == Math.Floor(customDownsample) ? (object)(long)customDownsample : customDownsample,
            [PatchSizeLevel0] = (long)Math.Round(plan.Level0Step),
            ["level0_magnification"] = 10.0 / plan.SlideMpp,
            ["target_magnification"] = 10.0 / plan.LevelMpp,
            ["overlap"] = 0,
            [Level0Width] = w0,
            [Level0Height] = h0,
            // "." (the file's own folder), not an absolute path: the same slide gives the same bytes wherever it is written.
            ["savetodir"] = ".",
            ["save_path"] = ".",
            ["tile_size"] = plan.TileSize,
            ["read_size"] = plan.ReadSize,
            [Downsample] = new[] { plan.LevelDownsample, plan.LevelDownsample },
            ["level_dim"] = new[] { lw, lh },
            ["downsampled_level_dim"] = new[] { lw, lh },
            ["level0_dim"] = new[] { w0, h0 },
            ["target_mpp"] = plan.TargetMpp,
            ["slide_mpp"] = plan.SlideMpp,
            ["mpp_source"] = MppSourceName(plan.MppSource),
            ["level_mpp"] = plan.LevelMpp,
            ["tile_mpp"] = plan.TileMpp,
            ["coordinates"] = CoordinateContract,
            ["encoder"] = encoder,
        };
        new Provenance { TileModelSha256 = tileModelSha256 }.AddToAttributes(attributes);
        return attributes;
    }

    /// <summary>How <see cref="MppSource"/> is written in the attributes and manifests.</summary>
    public static string MppSourceName(MppSource source) => source == MppSource.Metadata ? "metadata" : "override";

    /// <summary>
    /// The tile step in level-0 pixels from a file's attributes (TRIDENT's <c>patch_size_level0</c>, else CLAM's
    /// <c>patch_size</c> × <c>downsample</c> at <c>patch_level</c>), with how it was found; null when they do not say.
    /// </summary>
    public static (double Step, string Source, TilePlacementRule Rule)? Level0Step(IReadOnlyDictionary<string, object> attributes)
    {
        if (Number(attributes, PatchSizeLevel0) is { } psl0 && psl0 > 0)
            return (psl0, $"{PatchSizeLevel0} = {F(psl0)} (TRIDENT)", TilePlacementRule.TridentPatchSize);
        if (Number(attributes, PatchSize) is not { } ps || ps <= 0 || Number(attributes, PatchLevel) is not { } level)
            return null;
        if (Number(attributes, Downsample) is { } ds && ds >= 1)
            return (ps * Math.Floor(ds), $"{PatchSize} {F(ps)} × {Downsample} {F(Math.Floor(ds))} at {PatchLevel} {F(level)} (CLAM)", TilePlacementRule.ClamPatchSize);
        return level == 0 ? (ps, $"{PatchSize} {F(ps)} at {PatchLevel} 0 (CLAM)", TilePlacementRule.ClamPatchSize) : null;
    }

    /// <summary>What a reader needs and the file's attributes lack to find the tile step.</summary>
    public static IEnumerable<string> MissingForLevel0Step(IReadOnlyDictionary<string, object> attributes)
    {
        yield return PatchSizeLevel0;
        if (Number(attributes, PatchSize) is null) yield return PatchSize;
        if (Number(attributes, PatchLevel) is null) yield return PatchLevel;
        else if (Number(attributes, PatchLevel) != 0 && Number(attributes, Downsample) is null) yield return $"{Downsample} ({PatchLevel} is not 0)";
    }

    /// <summary>A numeric attribute (number, numeric string, or the first element of an array such as CLAM's <c>downsample</c> pair).</summary>
    public static double? Number(IReadOnlyDictionary<string, object> attributes, string key)
    {
        if (!attributes.TryGetValue(key, out var v)) return null;
        return v switch
        {
            string s => double.TryParse(s.Trim('[', ']', '(', ')').Split(',')[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null,
            System.Collections.IEnumerable e => e.Cast<object>().Select(o => (double?)Convert.ToDouble(o, CultureInfo.InvariantCulture)).FirstOrDefault(),
            IConvertible c => c.ToDouble(CultureInfo.InvariantCulture),
            _ => null,
        };
    }

    private static string F(double v) => TilePlacement.Format(v);
}
