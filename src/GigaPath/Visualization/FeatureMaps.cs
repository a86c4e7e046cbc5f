using GigaPath.IO;
using GigaPath.Models.Slide;

namespace GigaPath.Visualization;

/// <summary>The maps <c>gigapath pca</c> draws from a slide's tile features.</summary>
internal static class FeatureMaps
{
    /// <summary>PCA of the tile features; the first three components, each min-max scaled, are R, G and B.</summary>
    public static (Imaging.RgbImage Image, PcaResult Pca, TileLayout Layout) PcaRgb(TileFeatures tiles, SlideMapOptions options)
    {
        var coords = CoordsOf(tiles);
        var pca = Pca.Fit(tiles.Features, tiles.Count, tiles.Dim, 3);
        var scaled = Pca.MinMaxColumns(pca.Projected, pca.Count, pca.K);
        var rgb = new byte[3 * tiles.Count];
        for (int i = 0; i < tiles.Count; i++)
            for (int c = 0; c < 3; c++)
                rgb[3 * i + c] = c < pca.K ? Colormap.Channel(scaled[i * pca.K + c]) : (byte)0;
        var image = SlideMap.RenderColors(coords, rgb, options, out var layout);
        return (image, pca, layout);
    }

    /// <summary>Heatmap of principal component <paramref name="component"/> (1-based) of the tile features.</summary>
    public static (Imaging.RgbImage Image, PcaResult Pca) PcaComponent(TileFeatures tiles, int component, SlideMapOptions options)
    {
        if (component < 1) throw new ArgumentOutOfRangeException(nameof(component), component, "components are numbered from 1");
        var pca = Pca.Fit(tiles.Features, tiles.Count, tiles.Dim, component);
        if (pca.K < component)
            throw new GigaPathException($"{tiles.Source}: only {pca.K} components exist for {tiles.Count} tiles of width {tiles.Dim}");
        return (SlideMap.RenderScalar(CoordsOf(tiles), pca.Component(component - 1), options, out _), pca);
    }

    /// <summary>Per-tile values turned into their rank fraction in [0, 1] (ties share the mean rank), for skewed scores such as attention.</summary>
    public static float[] Ranks(IReadOnlyList<float> values)
    {
        var order = Enumerable.Range(0, values.Count).OrderBy(i => values[i]).ToArray();
        var ranks = new float[values.Count];
        for (int i = 0; i < order.Length;)
        {
            int j = i;
            while (j + 1 < order.Length && values[order[j + 1]] == values[order[i]]) j++;
            float r = values.Count == 1 ? 0 : (float)((i + j) / 2.0 / (values.Count - 1));
            for (int k = i; k <= j; k++) ranks[order[k]] = r;
            i = j + 1;
        }
        return ranks;
    }

    /// <summary>Map options completed from the feature file's attributes: tile size (patch_size_level0) and slide size (level0_dim).</summary>
    public static SlideMapOptions WithFileAttributes(SlideMapOptions options, IReadOnlyDictionary<string, object> attributes)
    {
        var result = options;
        // The tile's level-0 width as the file's own metadata gives it (TRIDENT's patch_size_level0, else CLAM's
        // patch_size × downsample), the same rule that places the tiles on the slide encoder's grid.
        if (result.TileSize is null && Models.Slide.TilePositions.Level0Step(attributes) is { } step)
            result = result with { TileSize = step.Step };
        if (result.SlideSize is null && attributes.TryGetValue("level0_dim", out var dim) && Pair(dim) is { } wh)
            result = result with { SlideSize = wh };
        // TRIDENT's names for the same size.
        if (result.SlideSize is null && Models.Slide.TilePositions.Number(attributes, "level0_width") is { } w && Models.Slide.TilePositions.Number(attributes, "level0_height") is { } h)
            result = result with { SlideSize = (w, h) };
        return result;
    }

    public static float[] CoordsOf(TileFeatures tiles) =>
        tiles.Coords?.Select(v => (float)v).ToArray() ?? throw new GigaPathException($"{tiles.Source}: no 'coords'; a map needs each tile's position");

    private static (double, double)? Pair(object value)
    {
        IEnumerable<double>? items = value switch
        {
            string s => s.Trim('[', ']').Split(',').Select(p => double.TryParse(p.Trim(), System.Globalization.CultureInfo.InvariantCulture, out var d) ? d : double.NaN),
            System.Collections.IEnumerable e => e.Cast<object>().Select(o => Convert.ToDouble(o, System.Globalization.CultureInfo.InvariantCulture)),
            _ => null,
        };
        var list = items?.ToList();
        return list is { Count: 2 } && list.All(d => d > 0) ? (list[0], list[1]) : null;
    }
}
