using GigaPath.Models.Slide;
using GigaPath.Models.Tile;
using System.CommandLine;
using GigaPath.Pipeline;
using GigaPath.Slides;

namespace GigaPath.Cli.Commands;

/// <summary>The tiling options shared by <c>run</c> and <c>tile</c>.</summary>
internal sealed class TilingArguments
{
    public Option<double?> TargetMpp { get; } = new("--target-mpp", "--mpp") { Description = "Micrometres per pixel of the tiles (default: the tile encoder's, 0.5 = 20x for every named encoder)" };
    public Option<int?> TileSize { get; } = new("--tile-size") { Description = "Tile side in pixels at the target MPP (default: the tile encoder's; 256 for gigapath, uni_v1, uni_v2, 224 for hoptimus0/1, h0-mini, virchow, virchow2)" };
    public Option<double?> SlideMpp { get; } = new("--slide-mpp") { Description = "The slides' level-0 micrometres per pixel, overriding their metadata (required for slides and plain images without it; a CSV manifest's mpp column sets it per slide)" };
    public Option<string> Tissue { get; } = new("--tissue") { Description = "Tissue detection: luminance (Otsu on luminance, the reference's rule), saturation (Otsu on HSV saturation) or none (every whole tile)", DefaultValueFactory = _ => "luminance" };
    public Option<double> MinTissue { get; } = new("--min-tissue") { Description = "Keep tiles whose tissue fraction is above this", DefaultValueFactory = _ => 0.1 };
    public Option<bool> SaveTiles { get; } = new("--save-tiles") { Description = "Also write every tile as <slide>.tiles/{x:05d}x_{y:05d}y.png (level-0 x, y)" };
    public Option<int> Readers { get; } = new("--readers") { Description = "Tile reader tasks running alongside the encoder", DefaultValueFactory = _ => 4 };

    public IEnumerable<Option> All => [TargetMpp, TileSize, SlideMpp, Tissue, MinTissue, SaveTiles, Readers];

    /// <summary>The tiling asked for, with <paramref name="encoder"/>'s tile size and resolution where none is given (Prov-GigaPath's without one).</summary>
    public TilingOptions Build(ParseResult parse, TileEncoderKind? encoder = null) => new()
    {
        TargetMpp = parse.GetValue(TargetMpp) ?? (encoder ?? TileEncoderKind.Get(SlideEncoder.TileEncoderName)).DefaultMicronsPerPixel,
        TileSize = parse.GetValue(TileSize) ?? (encoder ?? TileEncoderKind.Get(SlideEncoder.TileEncoderName)).DefaultTileSize,
        SlideMpp = parse.GetValue(SlideMpp),
        TissueMethod = ParseTissue(parse.GetValue(Tissue)!),
        MinTissueFraction = parse.GetValue(MinTissue),
    };

    /// <summary>The <c>--tissue</c> value as a <see cref="TissueMethod"/>.</summary>
    public static TissueMethod ParseTissue(string text) => text.Trim().ToLowerInvariant() switch
    {
        "luminance" => TissueMethod.LuminanceOtsu,
        "saturation" => TissueMethod.SaturationOtsu,
        "none" => TissueMethod.None,
        _ => throw new GigaPathException($"--tissue '{text}' is not supported (use luminance, saturation or none)"),
    };

    /// <summary>
    /// <c>--patch-size-level0</c> for the commands that read tile-feature files (embed-slide, finetune, predict, pca): the
    /// tile width in level-0 pixels, for files whose level-0 coords come without the attributes that say it.
    /// </summary>
    public static Option<double?> PatchSizeLevel0Option() => new("--patch-size-level0")
    {
        Description = "Tile width in level-0 pixels, for feature files with level-0 'coords' but no coords_tiling, patch_size_level0 (TRIDENT) or patch_size/patch_level (CLAM), e.g. CLAM's feature .h5: 512 for 256-px tiles at 0.5 µm/px from a 0.25 µm/px slide",
    };
}
