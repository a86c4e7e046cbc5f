using System.Buffers.Binary;

namespace GigaPath.Slides;

/// <summary>
/// Walks a TIFF's directories (classic or BigTIFF) without decoding anything, to tell a truncated or corrupt file (an
/// .svs cut short by a failed copy) from a plain image: a directory, a tag's values or a strip or tile that lies past
/// the end of the file. Aperio .svs, generic tiled TIFF and most other whole-slide formats are TIFFs. It also finds
/// decompression bombs before anything is decoded (<see cref="FindBomb"/>).
/// </summary>
internal static class TiffStructure
{
    private const ushort ImageWidth = 256, ImageLength = 257, StripOffsets = 273, StripByteCounts = 279, TileOffsets = 324, TileByteCounts = 325;

    /// <summary>
    /// Most decoded bytes (8-bit RGB) a directory may declare per distinct byte of its image data: deflate's largest
    /// ratio, far above what whole-slide images reach (JPEG slides are 10-100:1, a mostly blank one a few hundred).
    /// </summary>
    public const long MaxExpansion = 1032;

    /// <summary>What is damaged in the TIFF at <paramref name="path"/>, or null when its structure is whole (or it is not a TIFF).</summary>
    public static string? FindDamage(string path) => Walk(path).Damage;

    /// <summary>
    /// A directory whose declared size (width × height, as 8-bit RGB) is more than <see cref="MaxExpansion"/> times the
    /// distinct bytes its tiles or strips occupy: every tile offset on one small deflated tile, say, declaring 200000²
    /// pixels in a 4.9 MB file. Reading such a level takes hours and gigabytes for nothing; null when there is none.
    /// </summary>
    public static string? FindBomb(string path) => Walk(path).Bomb;

    private static (string? Damage, string? Bomb) Walk(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.RandomAccess);
        long length = file.Length;
        var head = new byte[16];
        if (file.ReadAtLeast(head, 16, throwOnEndOfStream: false) < 8) return (null, null);
        bool little = head[0] == 'I' && head[1] == 'I';
        if (!little && !(head[0] == 'M' && head[1] == 'M')) return (null, null);
        ushort magic = U16(head.AsSpan(2), little);
        if (magic is not (42 or 43)) return (null, null);
        bool big = magic == 43;
        long offset = big ? (long)U64(head.AsSpan(8), little) : U32(head.AsSpan(4), little);
        int countSize = big ? 8 : 2, entrySize = big ? 20 : 12, offsetSize = big ? 8 : 4;

        var seen = new HashSet<long>();
        string? bomb = null;
        for (int index = 0; offset != 0; index++)
        {
            if (!seen.Add(offset) || index > 100_000)
                return ($"its directories form a loop (directory {index} at byte {offset})", bomb);
            if (offset < 0 || offset + countSize > length)
                return ($"directory {index} should start at byte {offset}, past the end of the file ({length} bytes)", bomb);
            long entries = big ? (long)U64(Read(file, offset, 8), little) : U16(Read(file, offset, 2), little);
            if (entries < 0 || entries > length / entrySize || offset + countSize + entries * entrySize + offsetSize > length)
                return ($"directory {index} (byte {offset}, {entries} entries) runs past the end of the file ({length} bytes)", bomb);
            var block = Read(file, offset + countSize, (int)(entries * entrySize + offsetSize));
            long[]? starts = null, sizes = null;
            long width = 0, height = 0;
            for (int e = 0; e < entries; e++)
            {
                var entry = block.AsSpan(e * entrySize, entrySize);
                ushort tag = U16(entry, little);
                if (tag is not (ImageWidth or ImageLength or StripOffsets or StripByteCounts or TileOffsets or TileByteCounts)) continue;
                var values = ReadValues(file, entry, little, big, length, index, tag, out var damage);
                if (damage is not null) return (damage, bomb);
                if (tag is ImageWidth or ImageLength)
                {
                    if (values is [var v]) (tag == ImageWidth ? ref width : ref height) = v;
                }
                else if (tag is StripOffsets or TileOffsets) starts = values;
                else sizes = values;
            }
            if (starts is not null && sizes is not null)
            {
                for (int i = 0; i < Math.Min(starts.Length, sizes.Length); i++)
                {
                    if (sizes[i] > 0 && (starts[i] < 0 || starts[i] + sizes[i] > length))
                        return ($"image data of directory {index} (strip or tile {i}: bytes {starts[i]} to {starts[i] + sizes[i]}) lies past the end of the file ({length} bytes)", bomb);
                }
                long declared = width > 0 && height > long.MaxValue / 3 / width ? long.MaxValue : width * height * 3, distinct = DistinctBytes(starts, sizes);
                if (bomb is null && declared / Math.Max(1, distinct) > MaxExpansion)
                    bomb = $"directory {index} declares {width} x {height} pixels ({declared:N0} bytes decoded) in {distinct:N0} distinct bytes of image data " +
                        $"(its {starts.Length:N0} strips or tiles overlap), more than {MaxExpansion}:1; a decompression bomb, not a slide";
            }
            var next = block.AsSpan((int)(entries * entrySize), offsetSize);
            offset = big ? (long)U64(next, little) : U32(next, little);
        }
        return (null, bomb);
    }

    /// <summary>The bytes the strips or tiles occupy, each byte counted once however many of them point at it.</summary>
    private static long DistinctBytes(long[] starts, long[] sizes)
    {
        var ranges = Enumerable.Range(0, Math.Min(starts.Length, sizes.Length)).Where(i => sizes[i] > 0)
            .Select(i => (Start: starts[i], End: starts[i] + sizes[i])).OrderBy(r => r.Start).ToList();
        long total = 0, coveredTo = long.MinValue;
        foreach (var (start, end) in ranges)
        {
            long from = Math.Max(start, coveredTo);
            if (end > from) total += end - from;
            coveredTo = Math.Max(coveredTo, end);
        }
        return total;
    }

    private static long[]? ReadValues(FileStream file, ReadOnlySpan<byte> entry, bool little, bool big, long length, int index, ushort tag, out string? damage)
    {
        damage = null;
        ushort type = U16(entry[2..], little);
        int size = type switch { 3 => 2, 4 => 4, 16 => 8, _ => 0 };
        if (size == 0) return null;
        long count = big ? (long)U64(entry[4..], little) : U32(entry[4..], little);
        int inline = big ? 8 : 4;
        var valueField = entry.Slice(big ? 12 : 8, inline);
        if (count < 0 || count > length / size + 1)
        {
            damage = $"tag {tag} of directory {index} declares {count} values, more than the file could hold ({length} bytes)";
            return null;
        }
        byte[] data;
        if (count * size <= inline)
        {
            data = valueField[..(int)(count * size)].ToArray();
        }
        else
        {
            long at = big ? (long)U64(valueField, little) : U32(valueField, little);
            if (at < 0 || at + count * size > length)
            {
                damage = $"the values of tag {tag} of directory {index} (bytes {at} to {at + count * size}) lie past the end of the file ({length} bytes)";
                return null;
            }
            data = Read(file, at, (int)(count * size));
        }
        var values = new long[count];
        for (int i = 0; i < count; i++)
        {
            var v = data.AsSpan(i * size, size);
            values[i] = size switch { 2 => U16(v, little), 4 => U32(v, little), _ => (long)U64(v, little) };
        }
        return values;
    }

    private static byte[] Read(FileStream file, long at, int count)
    {
        var buffer = new byte[count];
        file.Position = at;
        file.ReadExactly(buffer);
        return buffer;
    }

    private static ushort U16(ReadOnlySpan<byte> b, bool little) =>
        little ? BinaryPrimitives.ReadUInt16LittleEndian(b) : BinaryPrimitives.ReadUInt16BigEndian(b);

    private static uint U32(ReadOnlySpan<byte> b, bool little) =>
        little ? BinaryPrimitives.ReadUInt32LittleEndian(b) : BinaryPrimitives.ReadUInt32BigEndian(b);

    private static ulong U64(ReadOnlySpan<byte> b, bool little) =>
        little ? BinaryPrimitives.ReadUInt64LittleEndian(b) : BinaryPrimitives.ReadUInt64BigEndian(b);
}
