using System.Buffers.Binary;
using System.IO.Compression;

namespace GigaPath.Imaging;

/// <summary>
/// Decodes 16-bit greyscale PNGs the way Pillow converts them to RGB. Pillow opens them as 32-bit integer images
/// (mode "I") and its I → RGB conversion saturates: every value above 255 becomes 255, values below keep their low
/// byte. Skia reduces 16-bit samples to their high byte before any output format, so the low byte it needs is lost
/// there; this reads the samples itself (zlib, the five scanline filters, Adam7).
/// </summary>
internal static class Gray16Png
{
    private const int BytesPerPixel = 2;

    // Adam7 passes: x start, y start, x step, y step.
    private static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    public static RgbImage Decode(ReadOnlySpan<byte> png, int width, int height, string sourceName)
    {
        bool interlaced = png[28] == 1;
        var passes = interlaced ? Adam7 : [(0, 0, 1, 1)];
        long expected = 0;
        foreach (var (x0, y0, dx, dy) in passes)
        {
            long pw = PassSize(width, x0, dx), ph = PassSize(height, y0, dy);
            if (pw > 0 && ph > 0) expected += ph * (1 + pw * BytesPerPixel);
        }
        if (expected > Array.MaxLength)
            throw new GigaPathException($"{sourceName}: a {width}x{height} 16-bit PNG is too large to decode in one piece");

        var raw = Inflate(ConcatenatedIdat(png, sourceName), (int)expected, sourceName);
        var rgb = new byte[(long)width * height * 3];
        int offset = 0;
        foreach (var (x0, y0, dx, dy) in passes)
        {
            int pw = PassSize(width, x0, dx), ph = PassSize(height, y0, dy);
            if (pw == 0 || ph == 0) continue;
            int rowBytes = pw * BytesPerPixel;
            var previous = new byte[rowBytes];
            var row = new byte[rowBytes];
            for (int py = 0; py < ph; py++)
            {
                byte filter = raw[offset];
                raw.AsSpan(offset + 1, rowBytes).CopyTo(row);
                offset += 1 + rowBytes;
                Unfilter(filter, row, previous, sourceName);
                int y = y0 + py * dy;
                for (int px = 0; px < pw; px++)
                {
                    int v = (row[2 * px] << 8) | row[2 * px + 1];
                    long p = ((long)y * width + x0 + px * dx) * 3;
                    rgb[p] = rgb[p + 1] = rgb[p + 2] = (byte)Math.Min(v, 255);
                }
                (previous, row) = (row, previous);
            }
        }
        return new RgbImage(width, height, rgb);
    }

    private static int PassSize(int size, int start, int step) => size <= start ? 0 : (size - start + step - 1) / step;

    private static byte[] ConcatenatedIdat(ReadOnlySpan<byte> png, string sourceName)
    {
        using var idat = new MemoryStream();
        int pos = 8;
        while (true)
        {
            if (pos + 8 > png.Length)
                throw new GigaPathException($"{sourceName}: the PNG file is truncated (no IEND chunk)");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(png[pos..]);
            uint type = BinaryPrimitives.ReadUInt32BigEndian(png[(pos + 4)..]);
            if (length > int.MaxValue || pos + 12L + length > png.Length)
                throw new GigaPathException($"{sourceName}: the PNG file is truncated (a chunk runs past the end)");
            if (type == 0x49444154u) idat.Write(png.Slice(pos + 8, (int)length)); // IDAT
            if (type == 0x49454E44u) break; // IEND
            pos += 12 + (int)length;
        }
        return idat.ToArray();
    }

    private static byte[] Inflate(byte[] compressed, int expected, string sourceName)
    {
        var raw = new byte[expected];
        try
        {
            using var z = new ZLibStream(new MemoryStream(compressed), CompressionMode.Decompress);
            int read = 0, n;
            while (read < expected && (n = z.Read(raw, read, expected - read)) > 0) read += n;
            if (read < expected)
                throw new GigaPathException($"{sourceName}: the PNG image data is truncated ({read} of {expected} bytes)");
        }
        catch (InvalidDataException e)
        {
            throw new GigaPathException($"{sourceName}: the PNG image data is corrupt ({e.Message})", e);
        }
        return raw;
    }

    private static void Unfilter(byte filter, Span<byte> row, ReadOnlySpan<byte> previous, string sourceName)
    {
        const int bpp = BytesPerPixel;
        switch (filter)
        {
            case 0:
                break;
            case 1:
                for (int i = bpp; i < row.Length; i++) row[i] += row[i - bpp];
                break;
            case 2:
                for (int i = 0; i < row.Length; i++) row[i] += previous[i];
                break;
            case 3:
                for (int i = 0; i < row.Length; i++)
                    row[i] += (byte)(((i >= bpp ? row[i - bpp] : 0) + previous[i]) >> 1);
                break;
            case 4:
                for (int i = 0; i < row.Length; i++)
                {
                    int a = i >= bpp ? row[i - bpp] : 0, b = previous[i], c = i >= bpp ? previous[i - bpp] : 0;
                    int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
                    row[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
                }
                break;
            default:
                throw new GigaPathException($"{sourceName}: the PNG image data is corrupt (scanline filter {filter})");
        }
    }
}
