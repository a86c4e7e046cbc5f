namespace GigaPath.Visualization;

/// <summary>
/// Maps level-0 slide coordinates to output pixels: pixel = (coordinate - origin) × scale. A tile at (x, y) covers
/// [x, x + tile size) × [y, y + tile size) in slide pixels, i.e. the pixel rectangle returned by <see cref="Rect"/>.
/// </summary>
internal sealed record TileLayout(double OriginX, double OriginY, double Scale, int Width, int Height, double TileSize)
{
    /// <summary>Pixel rectangle [X0, X1) × [Y0, Y1) of the tile whose top-left corner is (x, y); at least one pixel.</summary>
    public (int X0, int Y0, int X1, int Y1) Rect(double x, double y)
    {
        int x0 = (int)Math.Floor((x - OriginX) * Scale), y0 = (int)Math.Floor((y - OriginY) * Scale);
        int x1 = (int)Math.Floor((x + TileSize - OriginX) * Scale), y1 = (int)Math.Floor((y + TileSize - OriginY) * Scale);
        return (x0, y0, Math.Max(x1, x0 + 1), Math.Max(y1, y0 + 1));
    }

    /// <summary>
    /// Without a thumbnail: the tiles' bounding box plus one tile of margin, each tile drawn
    /// <paramref name="tilePixels"/> wide, shrunk if the image would exceed <paramref name="maxSize"/> on a side.
    /// </summary>
    public static TileLayout ForTiles(IReadOnlyList<float> coords, double tileSize, int tilePixels, int maxSize)
    {
        var (minX, minY, maxX, maxY) = Bounds(coords);
        double ox = minX - tileSize, oy = minY - tileSize;
        double w = maxX + 2 * tileSize - ox, h = maxY + 2 * tileSize - oy;
        double scale = tilePixels / tileSize;
        if (Math.Max(w, h) * scale > maxSize) scale = maxSize / Math.Max(w, h);
        return new TileLayout(ox, oy, scale, Math.Max(1, (int)Math.Ceiling(w * scale)), Math.Max(1, (int)Math.Ceiling(h * scale)), tileSize);
    }

    /// <summary>
    /// Over a thumbnail of the whole slide (origin at 0, 0): the slide's level-0 size when known, else the smallest
    /// box from the origin that holds every tile and has the thumbnail's aspect ratio.
    /// </summary>
    public static TileLayout ForThumbnail(IReadOnlyList<float> coords, double tileSize, int width, int height, (double Width, double Height)? slideSize)
    {
        double slideW, slideH;
        if (slideSize is { } s)
        {
            (slideW, slideH) = s;
        }
        else
        {
            var (_, _, maxX, maxY) = Bounds(coords);
            slideW = maxX + tileSize;
            slideH = maxY + tileSize;
            if (slideW / slideH > (double)width / height) slideH = slideW * height / width;
            else slideW = slideH * width / height;
        }
        return new TileLayout(0, 0, Math.Min(width / slideW, height / slideH), width, height, tileSize);
    }

    /// <summary>
    /// The tile size in slide pixels when none is given: the most common gap between neighbouring distinct x (or y)
    /// coordinates, i.e. the grid step; 256 when the grid has a single row and column.
    /// </summary>
    public static double InferTileSize(IReadOnlyList<float> coords)
    {
        var gaps = new Dictionary<double, int>();
        for (int axis = 0; axis < 2; axis++)
        {
            var values = Enumerable.Range(0, coords.Count / 2).Select(i => (double)coords[2 * i + axis]).Distinct().Order().ToArray();
            for (int i = 1; i < values.Length; i++)
            {
                double gap = values[i] - values[i - 1];
                gaps[gap] = gaps.GetValueOrDefault(gap) + 1;
            }
        }
        return gaps.Count == 0 ? 256 : gaps.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key).First().Key;
    }

    private static (double MinX, double MinY, double MaxX, double MaxY) Bounds(IReadOnlyList<float> coords)
    {
        if (coords.Count < 2) throw new GigaPathException("no tiles to draw");
        double minX = double.MaxValue, minY = double.MaxValue, maxX = double.MinValue, maxY = double.MinValue;
        for (int i = 0; i < coords.Count; i += 2)
        {
            minX = Math.Min(minX, coords[i]); maxX = Math.Max(maxX, coords[i]);
            minY = Math.Min(minY, coords[i + 1]); maxY = Math.Max(maxY, coords[i + 1]);
        }
        return (minX, minY, maxX, maxY);
    }
}
