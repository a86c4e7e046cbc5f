using System.Globalization;
using GigaPath.Imaging;

namespace GigaPath.Visualization;

/// <summary>How a per-tile map is drawn.</summary>
internal sealed record SlideMapOptions
{
    /// <summary>Tile side in the coordinates' pixel units (level 0); null = inferred from the coordinate grid.</summary>
    public double? TileSize { get; init; }

    /// <summary>An image of the whole slide to draw over (scaled to fit); null = white background.</summary>
    public RgbImage? Thumbnail { get; init; }

    /// <summary>Level-0 size of the whole slide, which the thumbnail shows; null = estimated from the tiles.</summary>
    public (double Width, double Height)? SlideSize { get; init; }

    /// <summary>Side of one tile in output pixels when there is no thumbnail.</summary>
    public int TilePixels { get; init; } = 8;

    public int MaxSize { get; init; } = 4096;

    /// <summary>Opacity of the tile colours; null = 1 on white, 0.6 over a thumbnail.</summary>
    public double? Alpha { get; init; }
}

/// <summary>Per-tile maps of a slide: one colour (RGB) or one value (heatmap with a colour bar) per tile, painted at its coordinates.</summary>
internal static class SlideMap
{
    /// <summary>Width of the colour-bar panel for maps up to 350 px tall; taller maps scale bar and labels up.</summary>
    public const int ColorBarWidth = 90;

    public static int ColorBarScale(int height) => Math.Clamp(height / 350, 1, 4);
    private static readonly (byte, byte, byte) White = (255, 255, 255), Black = (0, 0, 0);

    public static TileLayout Layout(IReadOnlyList<float> coords, SlideMapOptions options)
    {
        double tileSize = options.TileSize ?? TileLayout.InferTileSize(coords);
        if (!(tileSize > 0)) throw new GigaPathException($"tile size must be positive, got {tileSize}");
        return options.Thumbnail is { } t
            ? TileLayout.ForThumbnail(coords, tileSize, t.Width, t.Height, options.SlideSize)
            : TileLayout.ForTiles(coords, tileSize, options.TilePixels, options.MaxSize);
    }

    /// <summary>Paints tile i with colour (rgb[3i], rgb[3i+1], rgb[3i+2]); <paramref name="coords"/> is [N, 2] (x, y).</summary>
    public static RgbImage RenderColors(IReadOnlyList<float> coords, byte[] rgb, SlideMapOptions options, out TileLayout layout)
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
    public static RgbImage RenderScalar(IReadOnlyList<float> coords, IReadOnlyList<float> values, SlideMapOptions options, out TileLayout layout)
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
    public static RgbImage WithColorBar(RgbImage map, double min, double max)
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
    public static string Label(double v) => v.ToString(Math.Abs(v) is >= 1e-3 and < 1e5 or 0 ? "0.####" : "0.##E+0", CultureInfo.InvariantCulture);

    private static RgbImage Copy(RgbImage image) => new(image.Width, image.Height, (byte[])image.Pixels.Clone());
}
