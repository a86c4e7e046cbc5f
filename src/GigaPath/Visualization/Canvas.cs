using GigaPath.Imaging;

namespace GigaPath.Visualization;

/// <summary>Pixel-exact drawing primitives on an <see cref="RgbImage"/> (no anti-aliasing, so a tile's colour is exactly where its rectangle is).</summary>
internal static class Canvas
{
    public static RgbImage Filled(int width, int height, (byte R, byte G, byte B) colour)
    {
        var image = new RgbImage(width, height);
        FillRect(image, 0, 0, width, height, colour, 1.0);
        return image;
    }

    /// <summary>Blends <paramref name="colour"/> with opacity <paramref name="alpha"/> over [x0, x1) × [y0, y1), clipped to the image.</summary>
    public static void FillRect(RgbImage image, int x0, int y0, int x1, int y1, (byte R, byte G, byte B) colour, double alpha)
    {
        x0 = Math.Max(x0, 0); y0 = Math.Max(y0, 0);
        x1 = Math.Min(x1, image.Width); y1 = Math.Min(y1, image.Height);
        var p = image.Pixels;
        for (int y = y0; y < y1; y++)
        {
            int i = (y * image.Width + x0) * 3;
            for (int x = x0; x < x1; x++, i += 3)
            {
                if (alpha >= 1)
                {
                    p[i] = colour.R; p[i + 1] = colour.G; p[i + 2] = colour.B;
                }
                else
                {
                    p[i] = Blend(p[i], colour.R, alpha);
                    p[i + 1] = Blend(p[i + 1], colour.G, alpha);
                    p[i + 2] = Blend(p[i + 2], colour.B, alpha);
                }
            }
        }
    }

    /// <summary>Copies <paramref name="source"/> into <paramref name="target"/> with its top-left corner at (x, y), clipped.</summary>
    public static void Paste(RgbImage target, RgbImage source, int x, int y)
    {
        for (int row = 0; row < source.Height; row++)
        {
            int ty = y + row;
            if (ty < 0 || ty >= target.Height) continue;
            int sx0 = Math.Max(0, -x), sx1 = Math.Min(source.Width, target.Width - x);
            if (sx1 <= sx0) continue;
            Buffer.BlockCopy(source.Pixels, (row * source.Width + sx0) * 3, target.Pixels, (ty * target.Width + x + sx0) * 3, (sx1 - sx0) * 3);
        }
    }

    /// <summary>Nearest-neighbour resize (for token grids: every cell becomes a block).</summary>
    public static RgbImage ResizeNearest(RgbImage source, int width, int height)
    {
        var result = new RgbImage(width, height);
        for (int y = 0; y < height; y++)
        {
            int sy = (int)((long)y * source.Height / height);
            for (int x = 0; x < width; x++)
                Array.Copy(source.Pixels, (sy * source.Width + (int)((long)x * source.Width / width)) * 3, result.Pixels, (y * width + x) * 3, 3);
        }
        return result;
    }

    private static byte Blend(byte under, byte over, double alpha) => (byte)Math.Round(under + (over - under) * alpha);
}
