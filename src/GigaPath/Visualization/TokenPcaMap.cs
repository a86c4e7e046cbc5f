using System.Runtime.InteropServices;
using GigaPath.Imaging;
using GigaPath.Weights;

namespace GigaPath.Visualization;

/// <summary>
/// The reference's patch-token PCA (demo/gigapath_pca_visualization_timm.ipynb) for one tile: PCA of its 196 patch
/// tokens (CLS dropped), each component min-max scaled; tokens whose first scaled component is below the threshold
/// (above it with <c>foregroundLarger</c>) are foreground; a second PCA of the foreground tokens alone, min-max scaled,
/// gives their RGB; background is black. Drawn as [tile | 14×14 grid | overlay 0.3·tile + 0.7·grid].
/// </summary>
public static class TokenPcaMap
{
    internal const int Panel = 224, Gap = 8;

    /// <summary>
    /// The map of tile <paramref name="tileIndex"/> of a tokens file (<c>gigapath embed-tiles --tokens</c>: a
    /// safetensors tensor [N, 1 + P, D]); only that tile's rows are read.
    /// </summary>
    /// <param name="tokensPath">The .safetensors file.</param>
    /// <param name="tileIndex">Which tile (0-based row of the tensor).</param>
    /// <param name="tile">The tile's image.</param>
    /// <param name="threshold">Foreground threshold on the min-max scaled first principal component.</param>
    /// <param name="foregroundLarger">Whether foreground lies above the threshold (else below, as the reference notebook).</param>
    /// <param name="tensorName">The tensor holding the tokens.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tileIndex"/> is not a row of the tensor.</exception>
    /// <exception cref="GigaPathException">The file has no such tensor or it is not [N, tokens, D].</exception>
    public static TokenPcaMapResult DrawFromFile(string tokensPath, int tileIndex, RgbImage tile, double threshold = 0.5, bool foregroundLarger = false,
        string tensorName = "tokens")
    {
        ArgumentNullException.ThrowIfNull(tokensPath);
        ArgumentNullException.ThrowIfNull(tile);
        var (tokens, dim) = ReadTile(tokensPath, tileIndex, tensorName);
        return Render(tokens, dim, tile, threshold, foregroundLarger);
    }

    /// <summary>The map of one tile's tokens.</summary>
    /// <param name="tokens">[1 + P, D] row-major tokens of one tile (CLS first), P a square number.</param>
    /// <param name="dim">Token width D.</param>
    /// <param name="tile">The tile's image; it is resized and centre-cropped to 224 as the tile encoder saw it.</param>
    /// <param name="threshold">Foreground threshold on the first principal component, after min-max scaling.</param>
    /// <param name="foregroundLarger">Whether foreground is above the threshold (else below).</param>
    /// <exception cref="GigaPathException">The tokens are not CLS + a square number of patches, or fewer than two fall in the foreground.</exception>
    public static TokenPcaMapResult Draw(float[] tokens, int dim, RgbImage tile, double threshold = 0.5, bool foregroundLarger = false)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(tile);
        ArgumentOutOfRangeException.ThrowIfLessThan(dim, 1);
        return Render(tokens, dim, tile, threshold, foregroundLarger);
    }

    /// <summary>Row <paramref name="index"/> of the [N, tokens, D] tensor <paramref name="name"/>, as float32, with D.</summary>
    private static (float[] Tokens, int Dim) ReadTile(string path, int index, string name)
    {
        using var file = SafeTensorsFile.Open(path);
        if (!file.Contains(name)) throw new GigaPathException($"{path}: no '{name}' tensor (tile embedding writes it with {OptionNames.IncludeTokens}); found: {string.Join(", ", file.Names)}");
        var info = file.GetInfo(name);
        var shape = info.Shape;
        if (shape.Length != 3) throw new GigaPathException($"{path}: '{name}' must be [N, tokens, D], got [{string.Join(", ", shape)}]");
        if (index < 0 || index >= shape[0])
            throw new ArgumentOutOfRangeException(nameof(index), index, $"tile {index} is outside 0..{shape[0] - 1} ({path} holds {shape[0]} tiles)");
        int dim = checked((int)shape[2]);
        if (info.DType == TensorDType.F32)
        {
            // Only this tile's rows are touched in the memory-mapped file.
            long rowBytes = shape[1] * shape[2] * TensorDTypes.SizeOf(info.DType);
            return (MemoryMarshal.Cast<byte, float>(file.GetRawBytes(name, index * rowBytes, checked((int)rowBytes))).ToArray(), dim);
        }
        using var scope = TorchSharp.torch.NewDisposeScope();
        return (file.Load(name, TorchSharp.torch.ScalarType.Float32)[index].contiguous().data<float>().ToArray(), dim);
    }

    /// <param name="tokens">[1 + P, D] row-major tokens of one tile (CLS first), P a square number.</param>
    /// <param name="dim">Token width D.</param>
    /// <param name="tile">The tile image; it is resized and centre-cropped to 224 as the tile encoder saw it.</param>
    /// <param name="threshold">Foreground threshold on the first principal component, after min-max scaling.</param>
    /// <param name="foregroundLarger">Whether foreground is above the threshold (else below).</param>
    internal static TokenPcaMapResult Render(float[] tokens, int dim, RgbImage tile, double threshold = 0.5, bool foregroundLarger = false)
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
        return new TokenPcaMapResult(image, grid, fg, first);
    }
}

/// <summary>A tile's token PCA map (<see cref="TokenPcaMap"/>): the three panels and which tokens are foreground.</summary>
public sealed class TokenPcaMapResult
{
    internal TokenPcaMapResult(RgbImage image, RgbImage grid, bool[] foreground, PcaResult first)
    {
        Image = image;
        Grid = grid;
        Foreground = foreground;
        First = first;
    }

    /// <summary>[tile | token grid | overlay], 224 pixels high.</summary>
    public RgbImage Image { get; }

    /// <summary>The token grid at one pixel per patch (side √P): foreground tokens coloured, background black.</summary>
    public RgbImage Grid { get; }

    /// <summary>Whether each patch token (row-major over the grid) is foreground.</summary>
    public IReadOnlyList<bool> Foreground { get; }

    /// <summary>The PCA of all patch tokens that split foreground from background.</summary>
    internal PcaResult First { get; }
}
