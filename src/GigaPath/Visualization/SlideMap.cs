using System.Globalization;
using GigaPath.Imaging;
using GigaPath.Models.Slide;

namespace GigaPath.Visualization;

/// <summary>How a per-tile map is drawn (<see cref="SlideMap"/>); every setting has a default.</summary>
public sealed record SlideMapOptions
{
    /// <summary>Tile side in the coordinates' pixel units (level 0); null = inferred from the coordinate grid.</summary>
    public double? TileSize { get; init; }

    /// <summary>An image of the whole slide to draw over (scaled to fit); null = white background.</summary>
    public RgbImage? Thumbnail { get; init; }

    /// <summary>Level-0 size of the whole slide, which the thumbnail shows; null = estimated from the tiles.</summary>
    public (double Width, double Height)? SlideSize { get; init; }

    /// <summary>Side of one tile in output pixels when there is no thumbnail.</summary>
    public int TilePixels { get; init; } = 8;

    /// <summary>Largest side of the output in pixels without a thumbnail; tiles are drawn smaller to fit.</summary>
    public int MaxSize { get; init; } = 4096;

    /// <summary>Opacity of the tile colours; null = 1 on white, 0.6 over a thumbnail.</summary>
    public double? Alpha { get; init; }

    /// <summary>
    /// These options with what they leave unset taken from a tile-feature file's attributes: the tile size (TRIDENT's
    /// <c>patch_size_level0</c>, CLAM's <c>patch_size</c> × <c>downsample</c>) and the slide size (<c>level0_dim</c>,
    /// <c>level0_width</c> × <c>level0_height</c>).
    /// </summary>
    /// <param name="tiles">The tiles whose file's attributes complete the options.</param>
    public SlideMapOptions CompleteFrom(TileFeatures tiles)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        return FeatureMaps.WithFileAttributes(this, tiles.Attributes);
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for settings no map can be drawn with.</summary>
    internal SlideMapOptions Validate()
    {
        if (Alpha is double a && a is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(Alpha), a, "the opacity must lie in [0, 1]");
        if (TilePixels < 1) throw new ArgumentOutOfRangeException(nameof(TilePixels), TilePixels, "a tile must be at least one pixel wide");
        if (MaxSize < 1) throw new ArgumentOutOfRangeException(nameof(MaxSize), MaxSize, "the output must be at least one pixel wide");
        if (TileSize is double t && !(t > 0)) throw new ArgumentOutOfRangeException(nameof(TileSize), t, "the tile size must be positive");
        return this;
    }
}

/// <summary>A drawn slide map: the image and, for maps of principal components, each component's variance.</summary>
public sealed class SlideMapImage
{
    internal SlideMapImage(RgbImage image, IReadOnlyList<double> componentVariances)
    {
        Image = image;
        ComponentVariances = componentVariances;
    }

    /// <summary>The map (with a colour bar on the right for heat maps); <see cref="ImageDecoder.EncodePng"/> saves it.</summary>
    public RgbImage Image { get; }

    /// <summary>The variance along principal components 1, 2, … of the tile features fitted for the map; empty for a map of values.</summary>
    public IReadOnlyList<double> ComponentVariances { get; }
}

/// <summary>
/// Per-tile maps of a slide, each tile painted at its level-0 coordinates over a thumbnail of the slide or on white:
/// the first three principal components of the tile features as RGB (<see cref="DrawPca"/>), one component as a heat
/// map (<see cref="DrawComponent"/>), or any value per tile such as a head's attention (<see cref="DrawValues"/>).
/// </summary>
public static class SlideMap
{
    /// <summary>
    /// The tile features' first three principal components, each min-max scaled, as red, green and blue. Options left
    /// unset are completed from the file's attributes (<see cref="SlideMapOptions.CompleteFrom"/>).
    /// </summary>
    /// <param name="tiles">Tile features with coordinates (<c>TileFeatureFile.Read</c>).</param>
    /// <param name="options">How to draw; null for the defaults.</param>
    /// <exception cref="GigaPathException">The tiles have no coordinates.</exception>
    public static SlideMapImage DrawPca(TileFeatures tiles, SlideMapOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        var (image, pca, _) = FeatureMaps.PcaRgb(tiles.RequireUsable(), (options ?? new SlideMapOptions()).Validate().CompleteFrom(tiles));
        return new SlideMapImage(image, pca.Variance);
    }

    /// <summary>A heat map of principal component <paramref name="component"/> (1-based) of the tile features.</summary>
    /// <param name="tiles">Tile features with coordinates.</param>
    /// <param name="component">Which component, from 1.</param>
    /// <param name="options">How to draw; null for the defaults (completed from the file's attributes).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="component"/> is below 1.</exception>
    /// <exception cref="GigaPathException">The tiles have no coordinates, or fewer components than asked for.</exception>
    public static SlideMapImage DrawComponent(TileFeatures tiles, int component, SlideMapOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        ArgumentOutOfRangeException.ThrowIfLessThan(component, 1);
        var (image, pca) = FeatureMaps.PcaComponent(tiles.RequireUsable(), component, (options ?? new SlideMapOptions()).Validate().CompleteFrom(tiles));
        return new SlideMapImage(image, pca.Variance);
    }

    /// <summary>
    /// A heat map (viridis, between the values' minimum and maximum, with a labelled colour bar) of one value per tile.
    /// </summary>
    /// <param name="values">The tiles' coordinates and values (<see cref="TileValues.Read"/>, or made in code).</param>
    /// <param name="options">How to draw; null for the defaults.</param>
    /// <exception cref="GigaPathException">A value is NaN or infinite.</exception>
    public static SlideMapImage DrawValues(TileValues values, SlideMapOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new SlideMapImage(RenderScalar(values.Coords, values.Values, (options ?? new SlideMapOptions()).Validate(), out _), []);
    }

    /// <summary>Width of the colour-bar panel for maps up to 350 px tall; taller maps scale bar and labels up.</summary>
    internal const int ColorBarWidth = 90;

    internal static int ColorBarScale(int height) => Math.Clamp(height / 350, 1, 4);
    private static readonly (byte, byte, byte) White = (255, 255, 255), Black = (0, 0, 0);

    internal static TileLayout Layout(IReadOnlyList<float> coords, SlideMapOptions options)
    {
        double tileSize = options.TileSize ?? TileLayout.InferTileSize(coords);
        if (!(tileSize > 0)) throw new GigaPathException($"tile size must be positive, got {tileSize}");
        return options.Thumbnail is { } t
            ? TileLayout.ForThumbnail(coords, tileSize, t.Width, t.Height, options.SlideSize)
            : TileLayout.ForTiles(coords, tileSize, options.TilePixels, options.MaxSize);
    }

    /// <summary>Paints tile i with colour (rgb[3i], rgb[3i+1], rgb[3i+2]); <paramref name="coords"/> is [N, 2] (x, y).</summary>
    internal static RgbImage RenderColors(IReadOnlyList<float> coords, byte[] rgb, SlideMapOptions options, out TileLayout layout)
    {
        int n = coords.Count / 2;
        if (rgb.Length != 3 * n) throw new ArgumentException($"{rgb.Length / 3} colours for {n} tiles", nameof(rgb));
        layout = Layout(coords, options);
        var image = options.Thumbnail is { } t ? Copy(t) : Canvas.Filled(layout.Width, layout.Height, White);
        double alpha = options.Alpha ?? (options.Thumbnail is null ? 1.0 : 0.6);
        for (int i = 0; i < n; i++)
        {
            var (x0, y0, x1, y1) = layout.Rect(coords[2 * i], coords[2 * i + 1]);
            Canvas.FillRect(image, x0, y0, x1, y1, (rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]), alpha);
        }
        return image;
    }

    /// <summary>
    /// A heatmap of one value per tile (viridis, scaled between the values' minimum and maximum) with a colour bar
    /// labelled with those two values and the midpoint on the right.
    /// </summary>
    internal static RgbImage RenderScalar(IReadOnlyList<float> coords, IReadOnlyList<float> values, SlideMapOptions options, out TileLayout layout)
    {
        int n = coords.Count / 2;
        if (values.Count != n) throw new GigaPathException($"{values.Count} values for {n} tiles");
        if (values.Any(v => !float.IsFinite(v))) throw new GigaPathException("the per-tile values contain NaN or infinity");
        double min = values.Min(), max = values.Max();
        var rgb = new byte[3 * n];
        for (int i = 0; i < n; i++)
        {
            var (r, g, b) = Colormap.Viridis(max > min ? (values[i] - min) / (max - min) : 0);
            rgb[3 * i] = r; rgb[3 * i + 1] = g; rgb[3 * i + 2] = b;
        }
        var map = RenderColors(coords, rgb, options, out layout);
        return WithColorBar(map, min, max);
    }

    /// <summary>The map with a vertical colour bar (max at the top) and its labels appended on the right.</summary>
    internal static RgbImage WithColorBar(RgbImage map, double min, double max)
    {
        int height = Math.Max(map.Height, 160);
        int scale = ColorBarScale(height);
        var image = Canvas.Filled(map.Width + ColorBarWidth * scale, height, White);
        Canvas.Paste(image, map, 0, 0);
        int barX = map.Width + 10 * scale, barTop = 12 * scale, barBottom = height - 12 * scale, barW = 18 * scale;
        for (int y = barTop; y < barBottom; y++)
        {
            double t = 1 - (double)(y - barTop) / Math.Max(1, barBottom - barTop - 1);
            Canvas.FillRect(image, barX, y, barX + barW, y + 1, Colormap.Viridis(t), 1.0);
        }
        int labelX = barX + barW + 4 * scale;
        BitmapFont.Draw(image, Label(max), labelX, barTop, scale, Black);
        BitmapFont.Draw(image, Label((min + max) / 2), labelX, (barTop + barBottom - BitmapFont.GlyphHeight * scale) / 2, scale, Black);
        BitmapFont.Draw(image, Label(min), labelX, barBottom - BitmapFont.GlyphHeight * scale, scale, Black);
        return image;
    }

    /// <summary>Short number text for a colour bar (at most ~9 characters).</summary>
    internal static string Label(double v) => v.ToString(Math.Abs(v) is >= 1e-3 and < 1e5 or 0 ? "0.####" : "0.##E+0", CultureInfo.InvariantCulture);

    private static RgbImage Copy(RgbImage image) => new(image.Width, image.Height, (byte[])image.Pixels.Clone());
}
