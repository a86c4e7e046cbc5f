using System.Buffers.Binary;
using System.Text;

namespace GigaPath.Weights;

/// <summary>
/// A minimal in-memory zip writer: stored (uncompressed) entries whose data start on an aligned offset, as
/// PyTorch's <c>PyTorchStreamWriter</c> lays them out (an <c>FB</c> extra field pads each local header). No zip64:
/// entries and the archive stay under 4 GiB, which is far above one serialized tensor.
/// </summary>
internal sealed class StoredZipWriter
{
    private const uint LocalHeaderSignature = 0x04034b50;
    private const uint CentralHeaderSignature = 0x02014b50;
    private const uint EndOfCentralDirectorySignature = 0x06054b50;
    private const int LocalHeaderSize = 30;
    private const ushort VersionNeeded = 20;
    // 1980-01-01 00:00, the earliest DOS date: a fixed timestamp keeps the output deterministic.
    private const ushort DosDate = (0 << 9) | (1 << 5) | 1;

    private readonly int _alignment;
    private readonly MemoryStream _out = new();
    private readonly List<(byte[] Name, uint Crc, uint Size, uint Offset)> _entries = new();

    public StoredZipWriter(int alignment) => _alignment = alignment;

    public void Add(string name, ReadOnlySpan<byte> data)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        long offset = _out.Position;
        if (offset + data.Length + nameBytes.Length + LocalHeaderSize + _alignment + 4 > uint.MaxValue)
            throw new InvalidOperationException($"zip entry '{name}' would pass the 4 GiB limit of a non-zip64 archive");
        long dataStart = offset + LocalHeaderSize + nameBytes.Length + 4;
        int padding = (int)((_alignment - dataStart % _alignment) % _alignment);
        uint crc = Crc32.Compute(data);

        Span<byte> h = stackalloc byte[LocalHeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(h, LocalHeaderSignature);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], VersionNeeded);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 0); // flags
        BinaryPrimitives.WriteUInt16LittleEndian(h[8..], 0); // method: stored
        BinaryPrimitives.WriteUInt16LittleEndian(h[10..], 0); // time
        BinaryPrimitives.WriteUInt16LittleEndian(h[12..], DosDate);
        BinaryPrimitives.WriteUInt32LittleEndian(h[14..], crc);
        BinaryPrimitives.WriteUInt32LittleEndian(h[18..], (uint)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(h[22..], (uint)data.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(h[26..], (ushort)nameBytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(h[28..], (ushort)(4 + padding));
        _out.Write(h);
        _out.Write(nameBytes);
        Span<byte> extra = stackalloc byte[4];
        extra[0] = (byte)'F';
        extra[1] = (byte)'B';
        BinaryPrimitives.WriteUInt16LittleEndian(extra[2..], (ushort)padding);
        _out.Write(extra);
        for (int i = 0; i < padding; i++) _out.WriteByte((byte)'Z');
        _out.Write(data);
        _entries.Add((nameBytes, crc, (uint)data.Length, (uint)offset));
    }

    public byte[] Finish()
    {
        long cdStart = _out.Position;
        Span<byte> c = stackalloc byte[46];
        foreach (var (name, crc, size, offset) in _entries)
        {
            c.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(c, CentralHeaderSignature);
            BinaryPrimitives.WriteUInt16LittleEndian(c[4..], VersionNeeded); // made by: MS-DOS, 2.0
            BinaryPrimitives.WriteUInt16LittleEndian(c[6..], VersionNeeded);
            BinaryPrimitives.WriteUInt16LittleEndian(c[14..], DosDate);
            BinaryPrimitives.WriteUInt32LittleEndian(c[16..], crc);
            BinaryPrimitives.WriteUInt32LittleEndian(c[20..], size);
            BinaryPrimitives.WriteUInt32LittleEndian(c[24..], size);
            BinaryPrimitives.WriteUInt16LittleEndian(c[28..], (ushort)name.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(c[42..], offset);
            _out.Write(c);
            _out.Write(name);
        }
        long cdSize = _out.Position - cdStart;
        Span<byte> e = stackalloc byte[22];
        e.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(e, EndOfCentralDirectorySignature);
        BinaryPrimitives.WriteUInt16LittleEndian(e[8..], (ushort)_entries.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(e[10..], (ushort)_entries.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(e[12..], (uint)cdSize);
        BinaryPrimitives.WriteUInt32LittleEndian(e[16..], (uint)cdStart);
        _out.Write(e);
        return _out.ToArray();
    }
}

/// <summary>CRC-32 (IEEE 802.3, reflected, as zip uses it).</summary>
internal static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var t = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (var b in data)
            crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc ^ 0xFFFFFFFFu;
    }
}
