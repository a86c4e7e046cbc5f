using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace GigaPath.Tests.Imaging;

/// <summary>
/// Writes small PNG and TIFF files byte by byte, so that the decoder tests control every header field (bit depth,
/// colour type, palette, transparency, alpha kind) independently of any encoder library.
/// </summary>
internal static class TestImageFiles
{
    /// <summary>
    /// A PNG with samples from <paramref name="sample"/>(x, y, channel). <paramref name="filtered"/> cycles the five
    /// scanline filters row by row; <paramref name="interlaced"/> writes Adam7 (byte-aligned bit depths only).
    /// </summary>
    public static byte[] Png(int width, int height, int bitDepth, int colorType, int channels, Func<int, int, int, int> sample,
        byte[]? palette = null, byte[]? transparency = null, string? extraChunkType = null, byte[]? extraChunkData = null,
        bool filtered = false, bool interlaced = false)
    {
        using var file = new MemoryStream();
        file.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = (byte)bitDepth;
        ihdr[9] = (byte)colorType;
        ihdr[12] = (byte)(interlaced ? 1 : 0);
        WriteChunk(file, "IHDR", ihdr);
        if (extraChunkType is not null) WriteChunk(file, extraChunkType, extraChunkData ?? []);
        if (palette is not null) WriteChunk(file, "PLTE", palette);
        if (transparency is not null) WriteChunk(file, "tRNS", transparency);

        (int X0, int Y0, int Dx, int Dy)[] passes = interlaced
            ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            : [(0, 0, 1, 1)];
        int filterBpp = Math.Max(1, channels * bitDepth / 8);
        using var raw = new MemoryStream();
        using (var z = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
        {
            foreach (var (x0, y0, dx, dy) in passes)
            {
                int pw = width <= x0 ? 0 : (width - x0 + dx - 1) / dx;
                int ph = height <= y0 ? 0 : (height - y0 + dy - 1) / dy;
                if (pw == 0 || ph == 0) continue;
                int rowBytes = (pw * channels * bitDepth + 7) / 8;
                var previous = new byte[rowBytes];
                for (int py = 0; py < ph; py++)
                {
                    var row = PackRow(pw, channels, bitDepth, (px, c) => sample(x0 + px * dx, y0 + py * dy, c));
                    byte filter = (byte)(filtered ? py % 5 : 0);
                    z.WriteByte(filter);
                    z.Write(Filter(filter, row, previous, filterBpp));
                    previous = row;
                }
            }
        }
        WriteChunk(file, "IDAT", raw.ToArray());
        WriteChunk(file, "IEND", []);
        return file.ToArray();
    }

    private static byte[] PackRow(int width, int channels, int bitDepth, Func<int, int, int> sample)
    {
        var row = new byte[(width * channels * bitDepth + 7) / 8];
        for (int x = 0; x < width; x++)
            for (int c = 0; c < channels; c++)
            {
                int v = sample(x, c), bit = (x * channels + c) * bitDepth;
                if (bitDepth == 16)
                    (row[bit / 8], row[bit / 8 + 1]) = ((byte)(v >> 8), (byte)v);
                else // narrower samples are packed from the most significant bit
                    row[bit / 8] |= (byte)(v << (8 - bitDepth - bit % 8));
            }
        return row;
    }

    private static byte[] Filter(byte filter, byte[] row, byte[] previous, int bpp)
    {
        var outRow = new byte[row.Length];
        for (int i = 0; i < row.Length; i++)
        {
            int a = i >= bpp ? row[i - bpp] : 0, b = previous[i], c = i >= bpp ? previous[i - bpp] : 0;
            int predictor = filter switch
            {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) >> 1,
                _ => Paeth(a, b, c),
            };
            outRow[i] = (byte)(row[i] - predictor);
        }
        return outRow;
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    /// <summary>A PNG whose header claims the given size, with no image data (for the decompression-bomb guard).</summary>
    public static byte[] PngHeaderOnly(int width, int height)
    {
        var full = Png(1, 1, 8, 2, 3, (_, _, _) => 0);
        BinaryPrimitives.WriteInt32BigEndian(full.AsSpan(16), width);
        BinaryPrimitives.WriteInt32BigEndian(full.AsSpan(20), height);
        BinaryPrimitives.WriteUInt32BigEndian(full.AsSpan(29), Crc32(full.AsSpan(12, 17)));
        return full;
    }

    private static void WriteChunk(Stream s, string type, byte[] data)
    {
        Span<byte> u32 = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(u32, data.Length);
        s.Write(u32);
        var typeAndData = new byte[4 + data.Length];
        Encoding.ASCII.GetBytes(type, typeAndData);
        data.CopyTo(typeAndData, 4);
        s.Write(typeAndData);
        BinaryPrimitives.WriteUInt32BigEndian(u32, Crc32(typeAndData));
        s.Write(u32);
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
                crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>
    /// An uncompressed little-endian single-strip TIFF. <paramref name="samples"/> holds the strip (16-bit samples
    /// little-endian). photometric 1 = grey, 2 = RGB, 3 = palette (<paramref name="colorMap"/>: 3 × 2^bits 16-bit
    /// entries); <paramref name="extraSample"/> (0 unspecified, 1 associated, 2 unassociated alpha) marks the last sample.
    /// </summary>
    public static byte[] Tiff(int width, int height, int samplesPerPixel, int photometric, byte[] samples,
        int bitsPerSample = 8, int? extraSample = null, ushort[]? colorMap = null, int orientation = 1)
    {
        var tags = new List<(ushort Tag, ushort Type, uint Count, byte[] Value)>();
        void Short(ushort tag, params ushort[] v) => tags.Add((tag, 3, (uint)v.Length, v.SelectMany(BitConverter.GetBytes).ToArray()));
        void Long(ushort tag, uint v) => tags.Add((tag, 4, 1, BitConverter.GetBytes(v)));

        const int headerSize = 8;
        Long(256, (uint)width);
        Long(257, (uint)height);
        Short(258, Enumerable.Repeat((ushort)bitsPerSample, samplesPerPixel).ToArray());
        Short(259, 1);
        Short(262, (ushort)photometric);
        Long(273, headerSize); // strip offset: pixel data follows the header directly
        Short(274, (ushort)orientation);
        Short(277, (ushort)samplesPerPixel);
        Long(278, (uint)height);
        Long(279, (uint)samples.Length);
        Short(284, 1);
        if (colorMap is not null) Short(320, colorMap);
        if (extraSample is { } kind) Short(338, (ushort)kind);

        using var file = new MemoryStream();
        using var w = new BinaryWriter(file);
        uint ifdOffset = (uint)(headerSize + samples.Length + (samples.Length & 1));
        w.Write("II"u8);
        w.Write((ushort)42);
        w.Write(ifdOffset);
        w.Write(samples);
        if ((samples.Length & 1) != 0) w.Write((byte)0);

        // IFD: count, 12-byte entries, next-IFD offset, then the values that do not fit in 4 bytes.
        uint overflowOffset = ifdOffset + 2 + (uint)tags.Count * 12 + 4;
        var overflow = new MemoryStream();
        w.Write((ushort)tags.Count);
        foreach (var (tag, type, count, value) in tags)
        {
            w.Write(tag);
            w.Write(type);
            w.Write(count);
            if (value.Length <= 4)
            {
                var padded = new byte[4];
                value.CopyTo(padded, 0);
                w.Write(padded);
            }
            else
            {
                w.Write(overflowOffset + (uint)overflow.Length);
                overflow.Write(value);
            }
        }
        w.Write(0u);
        w.Write(overflow.ToArray());
        return file.ToArray();
    }
}
