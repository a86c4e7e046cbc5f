using GigaPath.Imaging;

namespace GigaPath.Visualization;

/// <summary>
/// The reference's patch-token PCA (demo/gigapath_pca_visualization_timm.ipynb) for one tile: PCA of its 196 patch
/// tokens (CLS dropped), each component min-max scaled; tokens whose first scaled component is below the threshold
/// (above it with <c>foregroundLarger</c>) are foreground; a second PCA of the foreground tokens alone, min-max scaled,
/// gives their RGB; background is black. Drawn as [tile | 14×14 grid | overlay 0.3·tile + 0.7·grid].
/// </summary>
internal static class TokenPcaMap
{
    public const int Panel = 224, Gap = 8;

    public sealed record Result(RgbImage Image, RgbImage Grid, bool[] Foreground, PcaResult First);

    /// <param name="tokens">[1 + P, D] row-major tokens of one tile (CLS first), P a square number.</param>
    /// <param name="dim">Token width D.</param>
    /// <param name="tile">The tile image; it is resized and centre-cropped to 224 as the tile encoder saw it.</param>
    /// <param name="threshold">Foreground threshold on the first principal component, after min-max scaling.</param>
    /// <param name="foregroundLarger">Whether foreground is above the threshold (else below).</param>
    public static Result Render(float[] tokens, int dim, RgbImage tile, double threshold = 0.5, bool foregroundLarger = false)
    {
        int count = tokens.Length / dim - 1;
        int side = (int)Math.Round(Math.Sqrt(count));
        if (count < 4 || side * side != count)
            throw new GigaPathException($"expected CLS + a square number of patch tokens, got {count + 1} tokens");
        var patches = tokens.AsSpan(dim).ToArray();

        var first = Pca.Fit(patches, count, dim, 3);
        var scaled = Pca.MinMaxColumns(first.Projected, count, first.K);
        var fg = Enumerable.Range(0, count).Select(i => foregroundLarger ? scaled[i * first.K] > threshold : scaled[i * first.K] < threshold).ToArray();
        int nFg = fg.Count(f => f);
        if (nFg < 2)
            throw new GigaPathException($"only {nFg} of {count} tokens fall in the foreground at threshold {threshold}; change {OptionNames.ForegroundThreshold} or {OptionNames.ForegroundLarger}");

        var fgRows = Enumerable.Range(0, count).Where(i => fg[i]).ToArray();
        var fgData = fgRows.SelectMany(i => patches.AsSpan(i * dim, dim).ToArray()).ToArray();
        var second = Pca.Fit(fgData, nFg, dim, 3);
        var colours = Pca.MinMaxColumns(second.Projected, nFg, second.K);
        var grid = new RgbImage(side, side);
        for (int j = 0; j < nFg; j++)
            for (int c = 0; c < second.K; c++)
                grid.Pixels[fgRows[j] * 3 + c] = Colormap.Channel(colours[j * second.K + c]);

        var pre = TilePreprocessor.Default;
        var shown = tile.Width == Panel && tile.Height == Panel ? tile : pre.CenterCrop(pre.Resize(tile));
        var big = Canvas.ResizeNearest(grid, Panel, Panel);
        var overlay = new RgbImage(big.Width, big.Height);
        for (int i = 0; i < overlay.Pixels.Length; i++)
            overlay.Pixels[i] = (byte)(0.3 * shown.Pixels[i] + 0.7 * big.Pixels[i]);

        var image = Canvas.Filled(3 * Panel + 2 * Gap, Panel, (255, 255, 255));
        Canvas.Paste(image, shown, 0, 0);
        Canvas.Paste(image, big, Panel + Gap, 0);
        Canvas.Paste(image, overlay, 2 * (Panel + Gap), 0);
        return new Result(image, grid, fg, first);
    }
}
