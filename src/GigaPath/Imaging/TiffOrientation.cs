namespace GigaPath.Imaging;

/// <summary>
/// The TIFF Orientation tag (1-8) applied the way Pillow's TIFF loader does it on load (a flip, a rotation or a
/// transposition of the stored rows), so that tiles come out the same way round as in the Python reference.
/// </summary>
internal static class TiffOrientation
{
    public static RgbImage Apply(RgbImage stored, int orientation)
    {
        if (orientation is < 2 or > 8) return stored;
        int w = stored.Width, h = stored.Height;
        bool swap = orientation >= 5;
        int outW = swap ? h : w, outH = swap ? w : h;
        var src = stored.Pixels;
        var dst = new byte[src.Length];
        for (int y = 0; y < outH; y++)
        {
            for (int x = 0; x < outW; x++)
            {
                // Output (x, y) reads stored pixel (sx, sy).
                var (sx, sy) = orientation switch
                {
                    2 => (w - 1 - x, y),          // mirrored horizontally
                    3 => (w - 1 - x, h - 1 - y),  // rotated 180°
                    4 => (x, h - 1 - y),          // mirrored vertically
                    5 => (y, x),                  // transposed
                    6 => (y, h - 1 - x),          // stored rotated 90° counter-clockwise
                    7 => (w - 1 - y, h - 1 - x),  // transversed
                    _ => (w - 1 - y, x),          // 8: stored rotated 90° clockwise
                };
                int s = (sy * w + sx) * 3, d = (y * outW + x) * 3;
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        }
        return new RgbImage(outW, outH, dst);
    }
}
