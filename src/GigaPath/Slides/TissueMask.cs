using GigaPath.Imaging;

namespace GigaPath.Slides;

/// <summary>
/// Tissue on a coarse grid of cells aligned with the tile grid: <see cref="CellsPerTile"/> × <see cref="CellsPerTile"/>
/// cells make one tile, cell (0, 0) starts at level-0 (0, 0), and the grid covers the whole slide (edges included).
/// </summary>
internal sealed record TissueMask
{
    public required int CellsX { get; init; }
    public required int CellsY { get; init; }

    /// <summary>Level-0 pixels per cell side (need not be whole).</summary>
    public required double CellSizeLevel0 { get; init; }

    public required int CellsPerTile { get; init; }

    /// <summary>The level scanned to build the mask.</summary>
    public required int Level { get; init; }

    public required TissueMethod Method { get; init; }

    /// <summary>The Otsu threshold on the method's 0–255 scale (luminance or saturation).</summary>
    public required double Threshold { get; init; }

    /// <summary>Per cell, row-major: how many of its scanned pixels are foreground.</summary>
    public required int[] ForegroundCounts { get; init; }

    /// <summary>Per cell: how many scanned pixels fell in it.</summary>
    public required int[] PixelCounts { get; init; }

    public float CellFraction(int cellX, int cellY)
    {
        int c = cellY * CellsX + cellX;
        return PixelCounts[c] == 0 ? 0f : (float)ForegroundCounts[c] / PixelCounts[c];
    }

    /// <summary>Per cell: the mean colour, a thumbnail of the slide at the mask's resolution.</summary>
    public required RgbImage Thumbnail { get; init; }

    /// <summary>Pixel-weighted foreground fraction of the cells of tile (<paramref name="gridX"/>, <paramref name="gridY"/>).</summary>
    public float TileFraction(int gridX, int gridY)
    {
        long fg = 0, n = 0;
        int x0 = gridX * CellsPerTile, y0 = gridY * CellsPerTile;
        for (int y = y0; y < Math.Min(CellsY, y0 + CellsPerTile); y++)
            for (int x = x0; x < Math.Min(CellsX, x0 + CellsPerTile); x++)
            {
                int c = y * CellsX + x;
                fg += ForegroundCounts[c];
                n += PixelCounts[c];
            }
        return n == 0 ? 0f : (float)((double)fg / n);
    }
}
