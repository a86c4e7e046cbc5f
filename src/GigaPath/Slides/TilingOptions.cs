namespace GigaPath.Slides;

/// <summary>How tissue is told from background on the low-resolution scan.</summary>
public enum TissueMethod
{
    /// <summary>Prov-GigaPath's rule: Otsu threshold on luminance (mean of R, G, B); foreground is the darker class.</summary>
    LuminanceOtsu,

    /// <summary>Otsu threshold on HSV saturation; foreground is the more saturated class. Ignores grey pen marks,
    /// shadows and dark but colourless debris better than luminance.</summary>
    SaturationOtsu,

    /// <summary>No detection: every whole tile is kept (pre-cropped regions, TMA cores). Tissue fractions are NaN.</summary>
    None,
}

/// <summary>What to tile: tile size and resolution, resolution source, tissue rule, grid limit.</summary>
public sealed record TilingOptions
{
    /// <summary>Tile side in pixels at <see cref="TargetMpp"/> (Prov-GigaPath: 256).</summary>
    public int TileSize { get; init; } = 256;

    /// <summary>Micrometres per pixel of the tiles (Prov-GigaPath: 0.5, i.e. 20x).</summary>
    public double TargetMpp { get; init; } = 0.5;

    /// <summary>The slide's level-0 resolution, overriding its metadata (required when the file has none).</summary>
    public double? SlideMpp { get; init; }

    /// <summary>Relative slack when matching a level to the target: a level within it reads tiles as they are
    /// (0.499 µm/px counts as 0.5), and a level may be this much coarser than the target.</summary>
    public double MppTolerance { get; init; } = 0.05;

    /// <summary>How tissue is told from background (Prov-GigaPath: <see cref="Slides.TissueMethod.LuminanceOtsu"/>).</summary>
    public TissueMethod TissueMethod { get; init; } = TissueMethod.LuminanceOtsu;

    /// <summary>A tile is kept when its tissue fraction is strictly greater than this (Prov-GigaPath: 0.1).</summary>
    public double MinTissueFraction { get; init; } = 0.1;

    /// <summary>Approximate resolution of the tissue mask, in µm per mask cell; cells divide tiles exactly.</summary>
    public double MaskMpp { get; init; } = 8.0;

    /// <summary>Largest grid side allowed: Prov-GigaPath's slide encoder embeds positions on a 1000 x 1000 grid of
    /// tiles. Null lifts the limit (tile embeddings only).</summary>
    public int? MaxGridSide { get; init; } = 1000;

    internal void Validate()
    {
        if (TileSize < 1) throw new GigaPathException($"tile size must be at least 1 pixel, got {TileSize}");
        CheckPositive(TargetMpp, $"target MPP ({OptionNames.TargetMpp})");
        if (SlideMpp is { } s) CheckPositive(s, $"slide MPP ({OptionNames.SlideMpp})");
        if (!(MppTolerance >= 0 && MppTolerance < 1)) throw new GigaPathException($"MPP tolerance must be in [0, 1), got {MppTolerance}");
        if (!(MinTissueFraction >= 0 && MinTissueFraction < 1))
            throw new GigaPathException($"minimum tissue fraction must be in [0, 1), got {MinTissueFraction}");
        CheckPositive(MaskMpp, "tissue mask MPP");
        if (MaxGridSide is < 1) throw new GigaPathException($"maximum grid side must be at least 1, got {MaxGridSide}");
    }

    private static void CheckPositive(double v, string what)
    {
        if (!double.IsFinite(v) || v <= 0) throw new GigaPathException($"{what} must be a positive number of micrometres per pixel, got {v}");
    }
}
