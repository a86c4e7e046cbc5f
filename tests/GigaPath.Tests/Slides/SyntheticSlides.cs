using GigaPath.Imaging;
using GigaPath.Slides;

namespace GigaPath.Tests.Slides;

/// <summary>In-memory slides with known content, for exact checks of tiling and tissue detection.</summary>
internal static class SyntheticSlides
{
    /// <summary>A white image with the given rectangles filled (x, y, w, h, colour).</summary>
    public static RgbImage Image(int width, int height, params (int X, int Y, int W, int H, (byte R, byte G, byte B) Colour)[] rects)
    {
        var px = new byte[width * height * 3];
        Array.Fill(px, (byte)255);
        foreach (var (rx, ry, rw, rh, c) in rects)
            for (int y = ry; y < ry + rh; y++)
                for (int x = rx; x < rx + rw; x++)
                {
                    int o = (y * width + x) * 3;
                    (px[o], px[o + 1], px[o + 2]) = (c.R, c.G, c.B);
                }
        return new RgbImage(width, height, px);
    }

    public static ImageFileSlide Slide(RgbImage image, double mpp = 0.5, string name = "synthetic.png") =>
        new(name, image, mpp);

    /// <summary>Reports other MPP metadata than the slide it wraps.</summary>
    public sealed class WithMpp(ISlide inner, double? mppX, double? mppY) : ISlide
    {
        public string Path => inner.Path;
        public string Vendor => inner.Vendor;
        public int LevelCount => inner.LevelCount;
        public double? MppX => mppX;
        public double? MppY => mppY;
        public double? ObjectivePower => inner.ObjectivePower;
        public IReadOnlyDictionary<string, string> Properties => inner.Properties;
        public IReadOnlyDictionary<string, (long Width, long Height)> AssociatedImages => inner.AssociatedImages;
        public (long Width, long Height) LevelDimensions(int level) => inner.LevelDimensions(level);
        public double LevelDownsample(int level) => inner.LevelDownsample(level);
        public RgbImage ReadRegion(long level0X, long level0Y, int level, int width, int height) =>
            inner.ReadRegion(level0X, level0Y, level, width, height);
        public RgbImage ReadAssociatedImage(string name) => inner.ReadAssociatedImage(name);
        public RgbImage GetThumbnail(int maxSide) => inner.GetThumbnail(maxSide);
        public void Dispose() => inner.Dispose();
    }
}
