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

    /// <summary>
    /// An in-memory pyramid whose every level is drawn from the same rectangles (level-0 coordinates, multiples of the
    /// largest downsample, so each level is exact): a deterministic stand-in for an OpenSlide pyramid. Counts the
    /// regions read per level.
    /// </summary>
    public sealed class Pyramid : ISlide
    {
        private readonly RgbImage[] _levels;
        private readonly int[] _downsamples;

        public Pyramid(int width, int height, int[] downsamples, params (int X, int Y, int W, int H, (byte R, byte G, byte B) Colour)[] rects)
        {
            _downsamples = downsamples;
            _levels = downsamples.Select(d => Image(width / d, height / d,
                rects.Select(r => (r.X / d, r.Y / d, r.W / d, r.H / d, r.Colour)).ToArray())).ToArray();
            Reads = new int[downsamples.Length];
        }

        public int[] Reads { get; }
        public string Path => "pyramid.synthetic";
        public string Vendor => "synthetic";
        public int LevelCount => _levels.Length;
        public double? MppX => null;
        public double? MppY => null;
        public double? ObjectivePower => null;
        public IReadOnlyDictionary<string, string> Properties { get; } = new Dictionary<string, string>();
        public IReadOnlyDictionary<string, (long Width, long Height)> AssociatedImages { get; } = new Dictionary<string, (long, long)>();
        public (long Width, long Height) LevelDimensions(int level) => (_levels[level].Width, _levels[level].Height);
        public double LevelDownsample(int level) => _downsamples[level];

        public RgbImage ReadRegion(long level0X, long level0Y, int level, int width, int height)
        {
            Reads[level]++;
            var src = _levels[level];
            int x0 = (int)(level0X / _downsamples[level]), y0 = (int)(level0Y / _downsamples[level]);
            var px = new byte[width * height * 3];
            Array.Fill(px, (byte)255);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    if (x0 + x < src.Width && y0 + y < src.Height)
                        Array.Copy(src.Pixels, ((y0 + y) * src.Width + x0 + x) * 3, px, (y * width + x) * 3, 3);
            return new RgbImage(width, height, px);
        }

        public RgbImage ReadAssociatedImage(string name) => throw new GigaPathException($"no associated image '{name}'");
        public RgbImage GetThumbnail(int maxSide) => SlideRegions.Thumbnail(this, maxSide);
        public void Dispose() { }
    }

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

/// <summary>Writes the simplest baseline TIFF: one uncompressed RGB strip (not tiled, so OpenSlide does not take it).</summary>
internal static class StrippedTiff
{
    public static void Write(string path, RgbImage image)
    {
        const int entries = 9, ifdOffset = 8, bitsOffset = ifdOffset + 2 + entries * 12 + 4, dataOffset = bitsOffset + 6;
        using var w = new BinaryWriter(File.Create(path));
        w.Write("II"u8);
        w.Write((ushort)42);
        w.Write(ifdOffset);
        w.Write((ushort)entries);
        void Entry(ushort tag, ushort type, int count, int value)
        {
            w.Write(tag);
            w.Write(type);
            w.Write(count);
            if (type == 3 && count == 1)
            {
                w.Write((ushort)value);
                w.Write((ushort)0);
            }
            else w.Write(value);
        }
        const ushort Short = 3, Long = 4;
        Entry(256, Long, 1, image.Width);
        Entry(257, Long, 1, image.Height);
        Entry(258, Short, 3, bitsOffset);
        Entry(259, Short, 1, 1);
        Entry(262, Short, 1, 2);
        Entry(273, Long, 1, dataOffset);
        Entry(277, Short, 1, 3);
        Entry(278, Long, 1, image.Height);
        Entry(279, Long, 1, image.Pixels.Length);
        w.Write(0);
        for (int i = 0; i < 3; i++) w.Write((ushort)8);
        w.Write(image.Pixels);
    }
}
