namespace GigaPath.Tests.Imaging;

/// <summary>
/// PNGs of every colour type and bit depth, each with the RGB bytes Pillow 9.4's <c>convert("RGB")</c> gives for it
/// (checked against Pillow itself when these cases were written): alpha dropped, grey replicated, palettes expanded,
/// low bit depths scaled, 16-bit colour reduced to its high byte, and 16-bit grey (Pillow mode "I") saturated at 255.
/// </summary>
public static class PngCases
{
    public const int Width = 13;
    public const int Height = 7;

    public sealed record Case(string Name, byte[] Png, byte[] ExpectedRgb)
    {
        public override string ToString() => Name;
    }

    private static byte S8(int x, int y, int c) => (byte)(x * 29 + y * 71 + c * 101 + 7);

    private static ushort S16(int x, int y, int c) => (ushort)(x * 7919 + y * 15401 + c * 20011 + 3);

    // Mostly small values so that Pillow's saturation of 16-bit grey is visible on both sides of 255.
    private static ushort Gray16(int x, int y) => (x + y) % 3 == 0 ? S16(x, y, 0) : (ushort)((x * 37 + y * 11) % 400);

    public static IEnumerable<Case> All()
    {
        yield return Rgb8("rgb8", gamma: false);
        yield return Rgb8("rgb8+gAMA", gamma: true);
        yield return Rgba8();
        yield return Gray8();
        yield return GrayAlpha8();
        foreach (var bits in new[] { 1, 2, 4 }) yield return LowBitGray(bits);
        foreach (var bits in new[] { 4, 8 }) yield return Palette(bits);
        yield return Gray16Case("gray16", filtered: false, interlaced: false);
        yield return Gray16Case("gray16-filtered", filtered: true, interlaced: false);
        yield return Gray16Case("gray16-adam7", filtered: true, interlaced: true);
        yield return Color16("rgb16-adam7", colorType: 2, channels: 3, interlaced: true);
        yield return Color16("rgb16", colorType: 2, channels: 3);
        yield return Color16("rgba16", colorType: 6, channels: 4);
        yield return GrayAlpha16();
        yield return Rgb8WithTransparentColor();
    }

    private static Case Build(string name, int bitDepth, int colorType, int channels, Func<int, int, int, int> sample,
        Func<int, int, (byte R, byte G, byte B)> expected, byte[]? palette = null, byte[]? trns = null,
        string? chunkType = null, byte[]? chunkData = null, bool filtered = false, bool interlaced = false)
    {
        var rgb = new byte[Width * Height * 3];
        for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width; x++)
            {
                int p = (y * Width + x) * 3;
                (rgb[p], rgb[p + 1], rgb[p + 2]) = expected(x, y);
            }
        var png = TestImageFiles.Png(Width, Height, bitDepth, colorType, channels, sample, palette, trns, chunkType, chunkData,
            filtered, interlaced);
        return new Case(name, png, rgb);
    }

    private static Case Rgb8(string name, bool gamma) =>
        // gAMA 1/2.2: Pillow ignores it, so the decoder must not colour-manage.
        Build(name, 8, 2, 3, (x, y, c) => S8(x, y, c), (x, y) => (S8(x, y, 0), S8(x, y, 1), S8(x, y, 2)),
            chunkType: gamma ? "gAMA" : null, chunkData: gamma ? [0, 0, 0xB1, 0x8F] : null);

    private static Case Rgba8() =>
        Build("rgba8", 8, 6, 4, (x, y, c) => c == 3 ? (x * 40 + y) % 256 : S8(x, y, c),
            (x, y) => (S8(x, y, 0), S8(x, y, 1), S8(x, y, 2)));

    private static Case Gray8() =>
        Build("gray8", 8, 0, 1, (x, y, _) => S8(x, y, 0), (x, y) => (S8(x, y, 0), S8(x, y, 0), S8(x, y, 0)));

    private static Case GrayAlpha8() =>
        Build("gray+alpha8", 8, 4, 2, (x, y, c) => c == 1 ? (x * 50) % 256 : S8(x, y, 0),
            (x, y) => (S8(x, y, 0), S8(x, y, 0), S8(x, y, 0)));

    private static Case LowBitGray(int bits)
    {
        int max = (1 << bits) - 1;
        return Build($"gray{bits}", bits, 0, 1, (x, y, _) => (x + 2 * y) % (max + 1), (x, y) =>
        {
            var v = (byte)((x + 2 * y) % (max + 1) * 255 / max);
            return (v, v, v);
        });
    }

    private static Case Palette(int bits)
    {
        int entries = 1 << bits;
        var palette = new byte[entries * 3];
        for (int i = 0; i < palette.Length; i++) palette[i] = (byte)(i * 53 + 11);
        var trns = Enumerable.Range(0, entries / 2).Select(i => (byte)(i * 17)).ToArray();
        int Index(int x, int y) => (x * 3 + y * 5) % entries;
        return Build($"palette{bits}+tRNS", bits, 3, 1, (x, y, _) => Index(x, y),
            (x, y) => (palette[Index(x, y) * 3], palette[Index(x, y) * 3 + 1], palette[Index(x, y) * 3 + 2]),
            palette, trns);
    }

    private static Case Gray16Case(string name, bool filtered, bool interlaced) =>
        Build(name, 16, 0, 1, (x, y, _) => Gray16(x, y), (x, y) =>
        {
            var v = (byte)Math.Min((int)Gray16(x, y), 255);
            return (v, v, v);
        }, filtered: filtered, interlaced: interlaced);

    private static Case Color16(string name, int colorType, int channels, bool interlaced = false) =>
        Build(name, 16, colorType, channels, (x, y, c) => S16(x, y, c),
            (x, y) => ((byte)(S16(x, y, 0) >> 8), (byte)(S16(x, y, 1) >> 8), (byte)(S16(x, y, 2) >> 8)),
            interlaced: interlaced);

    private static Case GrayAlpha16() =>
        Build("gray+alpha16", 16, 4, 2, (x, y, c) => S16(x, y, c), (x, y) =>
        {
            var v = (byte)(S16(x, y, 0) >> 8);
            return (v, v, v);
        });

    private static Case Rgb8WithTransparentColor()
    {
        // tRNS for truecolour names one colour (16-bit R, G, B) as transparent; Pillow keeps its RGB.
        var (r, g, b) = (S8(2, 1, 0), S8(2, 1, 1), S8(2, 1, 2));
        return Build("rgb8+tRNS", 8, 2, 3, (x, y, c) => S8(x, y, c), (x, y) => (S8(x, y, 0), S8(x, y, 1), S8(x, y, 2)),
            trns: [0, r, 0, g, 0, b]);
    }
}
