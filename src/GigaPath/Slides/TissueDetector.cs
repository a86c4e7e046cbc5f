using GigaPath.Imaging;

namespace GigaPath.Slides;

/// <summary>
/// Finds tissue on a low-resolution scan of the slide. An Otsu threshold is taken over every pixel of the scanned
/// level (luminance or saturation), then each mask cell counts its foreground pixels. Two passes over the level keep
/// memory bounded on slides whose coarsest level is still large.
/// </summary>
internal static class TissueDetector
{
    /// <summary>
    /// Least distance, on the 0–255 scale, between the means of Otsu's two classes for the split to mean tissue
    /// versus background. Otsu always splits, even a blank slide's JPEG noise; below this there is no tissue.
    /// </summary>
    public const double MinClassSeparation = 10;

    /// <summary>
    /// Builds the mask on cells of <paramref name="cellSizeLevel0"/> level-0 pixels, scanning the coarsest level that
    /// still has at least one pixel per cell.
    /// </summary>
    public static TissueMask Detect(ISlide slide, TissueMethod method, double cellSizeLevel0, int cellsPerTile)
    {
        if (method == TissueMethod.None)
            throw new ArgumentException("TissueMethod.None builds no mask", nameof(method));
        int level = 0;
        for (int i = 1; i < slide.LevelCount; i++)
            if (slide.LevelDownsample(i) <= cellSizeLevel0 * (1 + 1e-9)) level = i;
        var (w0, h0) = slide.LevelDimensions(0);
        var (lw, lh) = slide.LevelDimensions(level);
        double ds = slide.LevelDownsample(level);
        int cellsX = (int)Math.Ceiling(w0 / cellSizeLevel0), cellsY = (int)Math.Ceiling(h0 / cellSizeLevel0);
        double levelPixelsPerCell = cellSizeLevel0 / ds;
        int[] cellOfColumn = CellAverager.CellMap((int)lw, levelPixelsPerCell, cellsX);
        int[] cellOfRow = CellAverager.CellMap((int)lh, levelPixelsPerCell, cellsY);

        bool luminance = method == TissueMethod.LuminanceOtsu;
        // Luminance is kept as R+G+B (0..765) so its mean needs no rounding; saturation is on 0..255.
        int scale = luminance ? 3 : 1;
        var histogram = new long[255 * scale + 1];
        var averager = new CellAverager(cellOfColumn, cellOfRow, cellsX, cellsY);
        SlideRegions.ForEachStrip(slide, level, (strip, firstRow) =>
        {
            var px = strip.Pixels;
            for (int o = 0; o < px.Length; o += 3)
                histogram[Metric(luminance, px[o], px[o + 1], px[o + 2])]++;
            averager.Add(strip, firstRow);
        });

        var split = Otsu.Threshold(histogram);
        bool separable = split is { } s && (s.HighMean - s.LowMean) / scale >= MinClassSeparation;
        int threshold = split?.Threshold ?? 0;
        var foreground = new int[cellsX * cellsY];
        var pixels = new int[cellsX * cellsY];
        SlideRegions.ForEachStrip(slide, level, (strip, firstRow) =>
        {
            var px = strip.Pixels;
            for (int r = 0; r < strip.Height; r++)
            {
                int rowBase = cellOfRow[firstRow + r] * cellsX;
                int o = r * strip.Stride;
                for (int x = 0; x < strip.Width; x++, o += 3)
                {
                    int cell = rowBase + cellOfColumn[x];
                    pixels[cell]++;
                    int v = Metric(luminance, px[o], px[o + 1], px[o + 2]);
                    if (separable && (luminance ? v <= threshold : v > threshold)) foreground[cell]++;
                }
            }
        });

        return new TissueMask
        {
            CellsX = cellsX,
            CellsY = cellsY,
            CellSizeLevel0 = cellSizeLevel0,
            CellsPerTile = cellsPerTile,
            Level = level,
            Method = method,
            Threshold = separable ? (double)threshold / scale : double.NaN,
            ForegroundCounts = foreground,
            PixelCounts = pixels,
            Thumbnail = averager.Result(),
        };
    }

    /// <summary>Luminance as R+G+B, or HSV saturation 255·(max−min)/max rounded.</summary>
    private static int Metric(bool luminance, byte r, byte g, byte b)
    {
        if (luminance) return r + g + b;
        int max = Math.Max(r, Math.Max(g, b));
        if (max == 0) return 0;
        int min = Math.Min(r, Math.Min(g, b));
        return (255 * (max - min) + max / 2) / max;
    }
}
