namespace GigaPath.Tests.Imaging;

/// <summary>
/// Hand-written TIFFs with the RGB bytes Pillow 9.4's <c>convert("RGB")</c> gives for them (checked against Pillow
/// when these cases were written): alpha dropped whatever its kind, grey replicated, 16-bit palette entries and
/// 16-bit colour reduced to their high byte, 16-bit grey saturated at 255, associated alpha un-premultiplied, and the
/// Orientation tag applied.
/// </summary>
public static class TiffCases
{
    public const int Width = 11;
    public const int Height = 6;

    public sealed record Case(string Name, byte[] Tiff, int ExpectedWidth, int ExpectedHeight, byte[] ExpectedRgb)
    {
        public override string ToString() => Name;
    }

    private static int S8(int x, int y, int c) => (byte)(x * 31 + y * 67 + c * 97 + 5);

    private static int S16(int x, int y, int c) => (ushort)(x * 7919 + y * 15401 + c * 20011 + 3);

    private static int Gray16(int x, int y) => (x + y) % 3 == 0 ? S16(x, y, 0) : (x * 37 + y * 11) % 400;

    // Includes 0 and 255, the two alphas Pillow's un-premultiplication treats specially.
    private static int Alpha(int x, int y) => (x * 23 + y * 50) % 256 is var a && x == 1 ? 0 : x == 2 ? 255 : a;

    // Pillow's unpackRGBa, for the premultiplied sample S8 * a / 255 the file stores.
    private static int Unpremultiplied(int x, int y, int c)
    {
        int a = Alpha(x, y), stored = S8(x, y, c) * a / 255;
        return a == 0 ? 0 : Math.Min(stored * 255 / a, 255);
    }

    public static IEnumerable<Case> All()
    {
        yield return Build("rgb8", 3, 2, 8, S8, (x, y) => (S8(x, y, 0), S8(x, y, 1), S8(x, y, 2)));
        for (int orientation = 2; orientation <= 8; orientation++)
            yield return Oriented(orientation);
        foreach (var kind in new[] { 0, 2 })
            yield return Build($"rgba8-extrasample{kind}", 4, 2, 8, (x, y, c) => c == 3 ? Alpha(x, y) : S8(x, y, c),
                (x, y) => (S8(x, y, 0), S8(x, y, 1), S8(x, y, 2)), extraSample: kind);
        yield return Build("rgba8-associated", 4, 2, 8, (x, y, c) => c == 3 ? Alpha(x, y) : S8(x, y, c) * Alpha(x, y) / 255,
            (x, y) => (Unpremultiplied(x, y, 0), Unpremultiplied(x, y, 1), Unpremultiplied(x, y, 2)), extraSample: 1);
        yield return Build("gray8", 1, 1, 8, S8, (x, y) => (S8(x, y, 0), S8(x, y, 0), S8(x, y, 0)));
        yield return Build("gray+alpha8", 2, 1, 8, (x, y, c) => c == 1 ? x * 20 : S8(x, y, 0),
            (x, y) => (S8(x, y, 0), S8(x, y, 0), S8(x, y, 0)), extraSample: 2);
        yield return Palette8();
        yield return Build("gray16", 1, 1, 16, (x, y, _) => Gray16(x, y), (x, y) =>
        {
            int v = Math.Min(Gray16(x, y), 255);
            return (v, v, v);
        });
        yield return Build("rgb16", 3, 2, 16, S16, (x, y) => (S16(x, y, 0) >> 8, S16(x, y, 1) >> 8, S16(x, y, 2) >> 8));
        yield return Build("rgba16", 4, 2, 16, S16, (x, y) => (S16(x, y, 0) >> 8, S16(x, y, 1) >> 8, S16(x, y, 2) >> 8),
            extraSample: 2);
    }

    /// <summary>
    /// Pillow transposes TIFFs by their Orientation tag on load: 2 mirror, 3 rotate 180°, 4 flip, 5 transpose,
    /// 6 Pillow's ROTATE_270, 7 transverse, 8 ROTATE_90. Spelled out here as compositions of mirror, flip and
    /// transpose, independently of the decoder's own per-pixel mapping.
    /// </summary>
    private static Case Oriented(int orientation)
    {
        var stored = Build("stored", 3, 2, 8, S8, (x, y) => (S8(x, y, 0), S8(x, y, 1), S8(x, y, 2)), orientation: orientation);
        var (w, h, rgb) = (Width, Height, stored.ExpectedRgb);
        var steps = orientation switch
        {
            2 => "m",
            3 => "mf",
            4 => "f",
            5 => "t",
            6 => "tm",
            7 => "tmf",
            _ => "tf",
        };
        foreach (var step in steps)
            (w, h, rgb) = step switch
            {
                'm' => (w, h, Remap(rgb, w, h, w, h, (x, y) => (w - 1 - x, y))),
                'f' => (w, h, Remap(rgb, w, h, w, h, (x, y) => (x, h - 1 - y))),
                _ => (h, w, Remap(rgb, w, h, h, w, (x, y) => (y, x))),
            };
        return stored with { Name = $"rgb8-orientation{orientation}", ExpectedWidth = w, ExpectedHeight = h, ExpectedRgb = rgb };
    }

    private static byte[] Remap(byte[] src, int w, int h, int outW, int outH, Func<int, int, (int X, int Y)> source)
    {
        var dst = new byte[src.Length];
        for (int y = 0; y < outH; y++)
            for (int x = 0; x < outW; x++)
            {
                var (sx, sy) = source(x, y);
                Array.Copy(src, (sy * w + sx) * 3, dst, (y * outW + x) * 3, 3);
            }
        return dst;
    }

    private static Case Palette8()
    {
        var map = new ushort[3 * 256];
        for (int i = 0; i < map.Length; i++) map[i] = (ushort)(i * 40503 + 977);
        int Index(int x, int y) => (x * 7 + y * 29) % 256;
        return Build("palette8", 1, 3, 8, (x, y, _) => Index(x, y),
            (x, y) => (map[Index(x, y)] >> 8, map[256 + Index(x, y)] >> 8, map[512 + Index(x, y)] >> 8), colorMap: map);
    }

    private static Case Build(string name, int spp, int photometric, int bits, Func<int, int, int, int> sample,
        Func<int, int, (int R, int G, int B)> expected, int? extraSample = null, ushort[]? colorMap = null, int orientation = 1)
    {
        int bytes = bits / 8;
        var strip = new byte[Width * Height * spp * bytes];
        var rgb = new byte[Width * Height * 3];
        for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width; x++)
            {
                for (int c = 0; c < spp; c++)
                {
                    int v = sample(x, y, c), o = ((y * Width + x) * spp + c) * bytes;
                    strip[o] = (byte)v;
                    if (bytes == 2) strip[o + 1] = (byte)(v >> 8);
                }
                var (r, g, b) = expected(x, y);
                int p = (y * Width + x) * 3;
                (rgb[p], rgb[p + 1], rgb[p + 2]) = ((byte)r, (byte)g, (byte)b);
            }
        var tiff = TestImageFiles.Tiff(Width, Height, spp, photometric, strip, bits, extraSample, colorMap, orientation);
        return new Case(name, tiff, Width, Height, rgb);
    }
}
