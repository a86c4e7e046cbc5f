using GigaPath.Imaging;

namespace GigaPath.Slides;

/// <summary>Reading helpers shared by every <see cref="ISlide"/>: size checks, level choice, whole-level scans and
/// thumbnails.</summary>
internal static class SlideRegions
{
    /// <summary>Largest region read in one piece: its RGB bytes must fit one .NET array.</summary>
    public const long MaxRegionPixels = 512L * 1024 * 1024;

    /// <summary>Whole levels are scanned in full-width strips of about this many pixels, bounding memory.</summary>
    private const long StripPixels = 8L * 1024 * 1024;

    internal static void CheckSize(string path, int width, int height)
    {
        if (width <= 0 || height <= 0)
            throw new GigaPathException($"{path}: region size must be positive, got {width}x{height}");
        if ((long)width * height > MaxRegionPixels)
            throw new GigaPathException($"{path}: region {width}x{height} is too large to read at once (at most {MaxRegionPixels} pixels); read a coarser level or smaller parts");
    }

    /// <summary>The finest level whose downsample does not exceed <paramref name="downsample"/> (level 0 when every
    /// level is coarser): reading it and reducing loses nothing. Same rule as openslide_get_best_level_for_downsample.</summary>
    public static int BestLevelForDownsample(ISlide slide, double downsample)
    {
        int best = 0;
        for (int i = 1; i < slide.LevelCount; i++)
            if (slide.LevelDownsample(i) <= downsample) best = i;
        return best;
    }

    /// <summary>Reads all of <paramref name="level"/> top to bottom in full-width strips; <paramref name="visit"/>
    /// gets each strip and the level row it starts at. Memory stays bounded whatever the level's size.</summary>
    public static void ForEachStrip(ISlide slide, int level, Action<RgbImage, int> visit)
    {
        var (w, h) = slide.LevelDimensions(level);
        if (w > MaxRegionPixels || h > int.MaxValue)
            throw new GigaPathException($"{slide.Path}: level {level} is {w}x{h} pixels, too large to scan");
        int width = (int)w, height = (int)h;
        int rows = (int)Math.Clamp(StripPixels / width, 1, height);
        double ds = slide.LevelDownsample(level);
        for (int y = 0; y < height; y += rows)
        {
            int n = Math.Min(rows, height - y);
            visit(slide.ReadRegion(0, (long)(y * ds), level, width, n), y);
        }
    }

    /// <summary>
    /// The whole slide fitted in <paramref name="maxSide"/> pixels: the best level for the downsample is scanned and
    /// each output pixel is the mean of the level pixels whose centres fall in it (no aliasing, bounded memory).
    /// </summary>
    public static RgbImage Thumbnail(ISlide slide, int maxSide)
    {
        if (maxSide < 1) throw new ArgumentOutOfRangeException(nameof(maxSide), "thumbnail size must be at least 1");
        var (w0, h0) = slide.LevelDimensions(0);
        double ds = Math.Max(1.0, Math.Max(w0, h0) / (double)maxSide);
        int outW = (int)Math.Clamp(Math.Round(w0 / ds), 1, maxSide), outH = (int)Math.Clamp(Math.Round(h0 / ds), 1, maxSide);
        int level = BestLevelForDownsample(slide, ds);
        var (lw, lh) = slide.LevelDimensions(level);
        var averager = new CellAverager(
            CellAverager.CellMap((int)lw, lw / (double)outW, outW), CellAverager.CellMap((int)lh, lh / (double)outH, outH), outW, outH);
        ForEachStrip(slide, level, averager.Add);
        return averager.Result();
    }
}
