using System.Runtime.InteropServices;
using System.Text;

namespace GigaPath.IO;

/// <summary>
/// Writes the HDF5 files of <see cref="TileFeatureH5"/>: a root group of [rows, width] datasets, each chunked by whole
/// rows with an unlimited first dimension (h5py <c>maxshape=(None, width)</c>) and a version-1 B-tree chunk index,
/// so h5py can append rows (<c>dset.resize(len(dset) + n, axis=0)</c>, as CLAM's <c>save_hdf5</c> and TRIDENT's
/// <c>save_h5</c> do in mode 'a'). The structures are those libhdf5 writes with its default ("earliest") format:
/// superblock 0, version-1 object headers, layout message 3, attributes as version-1 attribute messages with strings
/// variable-length in a global heap (h5py reads them as <c>str</c>). PureHDF, the reader, cannot write this: it records
/// fixed maximum dimensions and an implicit or fixed-array chunk index, which libhdf5 extends without moving the
/// chunks, so appended rows read back as copies of the first ones once the file is reopened.
/// </summary>
internal static class Hdf5Writer
{
    /// <summary>A [rows, width] dataset of float32, float64 or int64 values (row-major), chunked by <paramref name="ChunkRows"/> rows.</summary>
    internal sealed record Dataset(string Name, Array Data, long Rows, int Width, int ChunkRows, IReadOnlyList<KeyValuePair<string, object>> Attributes);

    private const ulong Undefined = ulong.MaxValue;
    private const int SuperblockSize = 96;
    /// <summary>libhdf5's default K for chunk B-trees (superblock 0 cannot record another): nodes hold up to 2K children.</summary>
    private const int ChunkBTreeK = 32;
    private const int GlobalHeapMinSize = 4096;

    /// <summary>Writes the file to <paramref name="stream"/> (little-endian; positioned at 0).</summary>
    public static void Write(Stream stream, IReadOnlyList<KeyValuePair<string, object>> rootAttributes, IReadOnlyList<Dataset> datasets)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("the HDF5 writer writes little-endian data from memory as is");
        foreach (var d in datasets) Check(d);

        // Variable-length strings live in one global heap collection; their references are known before any header is encoded.
        var heap = new GlobalHeap();
        var rootMessages = new List<(ushort Type, byte[] Body)>();
        var datasetAttributes = datasets.Select(d => d.Attributes.Select(a => Attribute(a.Key, a.Value, heap)).ToList()).ToList();
        var rootAttributeMessages = rootAttributes.Select(a => Attribute(a.Key, a.Value, heap)).ToList();

        // Pass 1 sizes every object header (addresses are fixed-size fields), pass 2 encodes them with real addresses.
        byte[] Root(ulong[] datasetAddresses) => ObjectHeader(RootMessages(datasets, datasetAddresses, rootAttributeMessages));
        byte[] DatasetHeader(int i, ulong btree) => ObjectHeader(DatasetMessages(datasets[i], btree, datasetAttributes[i]));

        ulong rootAddress = SuperblockSize;
        var placeholder = new ulong[datasets.Count];
        ulong cursor = rootAddress + (ulong)Root(placeholder).Length;
        var headerAddresses = new ulong[datasets.Count];
        for (int i = 0; i < datasets.Count; i++)
        {
            headerAddresses[i] = cursor;
            cursor += (ulong)DatasetHeader(i, 0).Length;
        }
        ulong heapAddress = cursor;
        byte[] heapBytes = heap.Count == 0 ? [] : heap.Encode();
        cursor += (ulong)heapBytes.Length;
        var trees = new ChunkTree[datasets.Count];
        for (int i = 0; i < datasets.Count; i++)
        {
            trees[i] = new ChunkTree(datasets[i], cursor);
            cursor = trees[i].End;
        }

        heap.Address = heapAddress;
        // The references in the attribute data point into the heap: encode the attributes again now that it is placed.
        datasetAttributes = datasets.Select(d => d.Attributes.Select(a => Attribute(a.Key, a.Value, heap)).ToList()).ToList();
        rootAttributeMessages = rootAttributes.Select(a => Attribute(a.Key, a.Value, heap)).ToList();

        var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(Superblock(rootAddress, cursor));
        w.Write(Root(headerAddresses));
        for (int i = 0; i < datasets.Count; i++)
            w.Write(DatasetHeader(i, trees[i].RootAddress));
        w.Write(heapBytes);
        for (int i = 0; i < datasets.Count; i++)
            trees[i].Write(w);
        w.Flush();
        if ((ulong)stream.Position != cursor)
            throw new InvalidOperationException($"HDF5 writer: wrote {stream.Position} bytes, planned {cursor}");
    }

    private static void Check(Dataset d)
    {
        if (d.Width <= 0 || d.Rows < 0 || d.ChunkRows <= 0)
            throw new ArgumentException($"dataset '{d.Name}': shape [{d.Rows}, {d.Width}], chunk rows {d.ChunkRows}");
        if (d.Data.LongLength != d.Rows * d.Width)
            throw new ArgumentException($"dataset '{d.Name}': {d.Data.LongLength} values for [{d.Rows}, {d.Width}]");
        if ((long)d.ChunkRows * d.Width * ElementSize(d.Data) > uint.MaxValue)
            throw new ArgumentException($"dataset '{d.Name}': a chunk of {d.ChunkRows} rows is over 4 GiB");
    }

    private static int ElementSize(Array data) => data switch
    {
        float[] => 4,
        double[] or long[] => 8,
        _ => throw new ArgumentException($"the HDF5 writer writes float32, float64 and int64 datasets, not {data.GetType().Name}"),
    };

    private static byte[] Superblock(ulong rootAddress, ulong endOfFile)
    {
        var w = new ByteWriter();
        w.Bytes(TileFeatureH5.Signature);
        w.U8(0); w.U8(0); w.U8(0); w.U8(0); // superblock, free-space, root symbol table entry versions; reserved
        w.U8(0); w.U8(8); w.U8(8); w.U8(0); // shared header version; size of offsets, of lengths; reserved
        w.U16(4); w.U16(16);                // group leaf / internal node K (unused: groups hold links)
        w.U32(0);                           // file consistency flags
        w.U64(0); w.U64(Undefined); w.U64(endOfFile); w.U64(Undefined); // base, free space, end of file, driver info
        // Root group symbol table entry: no cached symbol table (the root group's links are link messages).
        w.U64(0); w.U64(rootAddress); w.U32(0); w.U32(0); w.Zeros(16);
        return w.ToArray();
    }

    private static List<(ushort, byte[])> RootMessages(IReadOnlyList<Dataset> datasets, ulong[] addresses, List<(ushort, byte[])> attributes)
    {
        var messages = new List<(ushort, byte[])>();
        var linkInfo = new ByteWriter();
        linkInfo.U8(0); linkInfo.U8(0); linkInfo.U64(Undefined); linkInfo.U64(Undefined); // compact storage: no heap, no index
        messages.Add((0x0002, linkInfo.ToArray()));
        messages.Add((0x000A, [0, 0])); // group info: defaults
        for (int i = 0; i < datasets.Count; i++)
        {
            var name = Encoding.UTF8.GetBytes(datasets[i].Name);
            if (name.Length is 0 or > 255) throw new ArgumentException($"dataset name '{datasets[i].Name}'");
            var link = new ByteWriter();
            link.U8(1); link.U8(0x10); link.U8(1); // version; flags: character set present, 1-byte name length; UTF-8
            link.U8((byte)name.Length); link.Bytes(name); link.U64(addresses[i]); // hard link
            messages.Add((0x0006, link.ToArray()));
        }
        messages.AddRange(attributes);
        return messages;
    }

    private static List<(ushort, byte[])> DatasetMessages(Dataset d, ulong btree, List<(ushort, byte[])> attributes)
    {
        int elementSize = ElementSize(d.Data);
        var layout = new ByteWriter();
        layout.U8(3); layout.U8(2); layout.U8(3); layout.U64(btree); // version 3, chunked, rank + 1 dimensions
        layout.U32((uint)d.ChunkRows); layout.U32((uint)d.Width); layout.U32((uint)elementSize);
        var messages = new List<(ushort, byte[])>
        {
            (0x0001, Dataspace([(ulong)d.Rows, (ulong)d.Width], [Undefined, (ulong)d.Width])),
            (0x0003, Datatype(d.Data)),
            (0x0005, [2, 3, 2, 0]), // fill value v2: allocated incrementally, written if set, none set (reads as 0)
            (0x0008, layout.ToArray()),
        };
        messages.AddRange(attributes);
        return messages;
    }

    private static byte[] Dataspace(ulong[] dims, ulong[]? maxDims)
    {
        var w = new ByteWriter();
        w.U8(1); w.U8((byte)dims.Length); w.U8(maxDims is null ? (byte)0 : (byte)1); w.U8(0); w.U32(0);
        foreach (var d in dims) w.U64(d);
        if (maxDims is not null) foreach (var d in maxDims) w.U64(d);
        return w.ToArray();
    }

    private static byte[] Datatype(object value) => value switch
    {
        float or float[] => Float(4, 31, 23, 8, 23, 127),
        double or double[] => Float(8, 63, 52, 11, 52, 1023),
        long or long[] => FixedPoint(8, signed: true),
        int or int[] => FixedPoint(4, signed: true),
        bool => FixedPoint(1, signed: false),
        string or string[] => VariableLengthString(),
        _ => throw new GigaPathException($"HDF5 attribute values of type {value.GetType().Name} are not written (use numbers, strings or arrays of them)"),
    };

    private static byte[] Float(uint size, byte signLocation, byte exponentLocation, byte exponentSize, byte mantissaSize, uint bias)
    {
        var w = new ByteWriter();
        w.U8(0x11); w.U8(0x20); w.U8(signLocation); w.U8(0); w.U32(size); // version 1, class 1; little-endian, implied msb
        w.U16(0); w.U16((ushort)(size * 8)); w.U8(exponentLocation); w.U8(exponentSize); w.U8(0); w.U8(mantissaSize); w.U32(bias);
        return w.ToArray();
    }

    private static byte[] FixedPoint(uint size, bool signed)
    {
        var w = new ByteWriter();
        w.U8(0x10); w.U8(signed ? (byte)0x08 : (byte)0); w.U8(0); w.U8(0); w.U32(size); w.U16(0); w.U16((ushort)(size * 8));
        return w.ToArray();
    }

    /// <summary>A variable-length UTF-8 string of 1-byte unsigned characters, as libhdf5 encodes h5py's <c>str</c>.</summary>
    private static byte[] VariableLengthString()
    {
        var w = new ByteWriter();
        w.U8(0x19); w.U8(0x01); w.U8(0x01); w.U8(0); w.U32(16); // version 1, class 9; string, null-terminated, UTF-8; size of a reference
        w.Bytes(FixedPoint(1, signed: false));
        return w.ToArray();
    }

    private static (ushort, byte[]) Attribute(string name, object value, GlobalHeap heap)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var type = Datatype(value);
        bool scalar = value is not Array;
        var space = Dataspace(scalar ? [] : [(ulong)((Array)value).Length], null);
        var data = new ByteWriter();
        switch (value)
        {
            case string s: heap.Reference(data, s); break;
            case string[] a: foreach (var s in a) heap.Reference(data, s); break;
            case bool b: data.U8(b ? (byte)1 : (byte)0); break;
            case int i: data.U32(unchecked((uint)i)); break;
            case long l: data.U64(unchecked((ulong)l)); break;
            case float f: data.Bytes(BitConverter.GetBytes(f)); break;
            case double d: data.Bytes(BitConverter.GetBytes(d)); break;
            case int[] or long[] or float[] or double[]: data.Bytes(RawBytes((Array)value)); break;
        }
        var w = new ByteWriter();
        w.U8(1); w.U8(0); w.U16((ushort)(nameBytes.Length + 1)); w.U16((ushort)type.Length); w.U16((ushort)space.Length);
        w.Bytes(nameBytes); w.U8(0); w.Align8();
        w.Bytes(type); w.Align8();
        w.Bytes(space); w.Align8();
        w.Bytes(data.ToArray());
        return (0x000C, w.ToArray());
    }

    private static byte[] RawBytes(Array a) => a switch
    {
        int[] i => MemoryMarshal.AsBytes(i.AsSpan()).ToArray(),
        long[] l => MemoryMarshal.AsBytes(l.AsSpan()).ToArray(),
        float[] f => MemoryMarshal.AsBytes(f.AsSpan()).ToArray(),
        double[] d => MemoryMarshal.AsBytes(d.AsSpan()).ToArray(),
        _ => throw new ArgumentException(a.GetType().Name),
    };

    /// <summary>A version-1 object header: a 16-byte prefix, then each message 8-byte aligned.</summary>
    private static byte[] ObjectHeader(List<(ushort Type, byte[] Body)> messages)
    {
        var body = new ByteWriter();
        foreach (var (type, data) in messages)
        {
            int size = (data.Length + 7) & ~7;
            if (size > ushort.MaxValue)
                throw new GigaPathException($"HDF5 header message of {data.Length:N0} bytes (an attribute too large for an object header)");
            body.U16(type); body.U16((ushort)size); body.U8(0); body.Zeros(3);
            body.Bytes(data); body.Align8();
        }
        var w = new ByteWriter();
        w.U8(1); w.U8(0); w.U16((ushort)messages.Count); w.U32(1); w.U32((uint)body.Length); w.U32(0);
        w.Bytes(body.ToArray());
        return w.ToArray();
    }

    /// <summary>
    /// The chunks of one dataset and their version-1 B-tree (node type 1): leaves of up to 2K chunks, then levels of
    /// up to 2K children until one root. Each key is a chunk's offset (row, 0, 0); a node's last key is the end of its
    /// last chunk, as libhdf5 writes it.
    /// </summary>
    private sealed class ChunkTree
    {
        private readonly Dataset _d;
        private readonly int _elementSize;
        private readonly long _chunks;
        private readonly List<List<Node>> _levels = [];
        private readonly ulong _dataAddress;
        private readonly int _chunkBytes;

        private sealed record Node(ulong Address, long FirstChunk, long LastChunk, List<ulong> Children, List<long> ChildFirstChunks);

        private static int NodeSize => 24 + (2 * ChunkBTreeK + 1) * KeySize + 2 * ChunkBTreeK * 8;
        private const int KeySize = 4 + 4 + 3 * 8;

        public ChunkTree(Dataset d, ulong address)
        {
            _d = d;
            _elementSize = ElementSize(d.Data);
            _chunkBytes = d.ChunkRows * d.Width * _elementSize;
            _chunks = (d.Rows + d.ChunkRows - 1) / d.ChunkRows;
            ulong cursor = address;
            if (_chunks > 0)
            {
                // Leaves index chunk numbers; each level above indexes the nodes below it.
                long count = _chunks;
                do
                {
                    var level = new List<Node>();
                    long groups = (count + 2 * ChunkBTreeK - 1) / (2 * ChunkBTreeK);
                    for (long g = 0; g < groups; g++)
                    {
                        level.Add(new Node(cursor, 0, 0, [], []));
                        cursor += (ulong)NodeSize;
                    }
                    _levels.Add(level);
                    count = groups;
                } while (count > 1);
            }
            _dataAddress = cursor;
            End = cursor + (ulong)(_chunks * _chunkBytes);
            Link();
        }

        public ulong RootAddress => _levels.Count == 0 ? Undefined : _levels[^1][0].Address;
        public ulong End { get; }

        private void Link()
        {
            if (_levels.Count == 0) return;
            // Leaves: chunk addresses.
            var leaves = _levels[0];
            for (long c = 0; c < _chunks; c++)
            {
                var node = leaves[(int)(c / (2 * ChunkBTreeK))];
                node.Children.Add(_dataAddress + (ulong)(c * _chunkBytes));
                node.ChildFirstChunks.Add(c);
            }
            for (int l = 1; l < _levels.Count; l++)
            {
                var below = _levels[l - 1];
                for (int i = 0; i < below.Count; i++)
                {
                    var node = _levels[l][i / (2 * ChunkBTreeK)];
                    node.Children.Add(below[i].Address);
                    node.ChildFirstChunks.Add(below[i].ChildFirstChunks[0]);
                }
            }
        }

        public void Write(BinaryWriter w)
        {
            for (int l = 0; l < _levels.Count; l++)
            {
                var level = _levels[l];
                for (int i = 0; i < level.Count; i++)
                {
                    var node = level[i];
                    var b = new ByteWriter();
                    b.Bytes("TREE"u8); b.U8(1); b.U8((byte)l); b.U16((ushort)node.Children.Count);
                    b.U64(i > 0 ? level[i - 1].Address : Undefined);
                    b.U64(i + 1 < level.Count ? level[i + 1].Address : Undefined);
                    for (int k = 0; k < node.Children.Count; k++)
                    {
                        Key(b, (uint)_chunkBytes, node.ChildFirstChunks[k] * _d.ChunkRows, 0, 0);
                        b.U64(node.Children[k]);
                    }
                    // The last key: the end of the node's last chunk.
                    long last = i + 1 < level.Count ? level[i + 1].ChildFirstChunks[0] - 1 : _chunks - 1;
                    Key(b, 0, (last + 1) * _d.ChunkRows, _d.Width, _elementSize);
                    b.Zeros(NodeSize - b.Length);
                    w.Write(b.ToArray());
                }
            }
            long chunkValues = (long)_d.ChunkRows * _d.Width;
            for (long c = 0; c < _chunks; c++)
            {
                long start = c * chunkValues;
                int n = (int)Math.Min(chunkValues, _d.Data.LongLength - start);
                w.Write(ChunkBytes(_d.Data, start, n));
                if (n < chunkValues) w.Write(new byte[(chunkValues - n) * _elementSize]); // the last chunk is stored whole
            }
        }

        private static void Key(ByteWriter b, uint chunkBytes, long row, long column, long element)
        {
            b.U32(chunkBytes); b.U32(0); b.U64((ulong)row); b.U64((ulong)column); b.U64((ulong)element);
        }
    }

    /// <summary>The bytes of values [start, start + count) (a slice of the values first: the whole array may be over 2 GiB of bytes).</summary>
    private static ReadOnlySpan<byte> ChunkBytes(Array a, long start, int count) => a switch
    {
        float[] f => MemoryMarshal.AsBytes(f.AsSpan(checked((int)start), count)),
        long[] l => MemoryMarshal.AsBytes(l.AsSpan(checked((int)start), count)),
        double[] d => MemoryMarshal.AsBytes(d.AsSpan(checked((int)start), count)),
        _ => throw new ArgumentException(a.GetType().Name),
    };

    /// <summary>One global heap collection holding every variable-length string of the file.</summary>
    private sealed class GlobalHeap
    {
        private readonly List<byte[]> _objects = [];
        private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);

        public ulong Address { get; set; } = Undefined;
        public int Count => _objects.Count;

        /// <summary>Writes the 16-byte reference to <paramref name="s"/> (length, collection address, object index).</summary>
        public void Reference(ByteWriter data, string s)
        {
            if (!_index.TryGetValue(s, out int index))
            {
                _objects.Add(Encoding.UTF8.GetBytes(s));
                index = _objects.Count; // object 0 is the free space
                _index[s] = index;
            }
            data.U32((uint)_objects[index - 1].Length); data.U64(Address); data.U32((uint)index);
        }

        public byte[] Encode()
        {
            var w = new ByteWriter();
            w.Bytes("GCOL"u8); w.U8(1); w.Zeros(3); w.U64(0); // size patched below
            for (int i = 0; i < _objects.Count; i++)
            {
                w.U16((ushort)(i + 1)); w.U16(1); w.U32(0); w.U64((ulong)_objects[i].Length);
                w.Bytes(_objects[i]); w.Align8();
            }
            int size = Math.Max(GlobalHeapMinSize, w.Length + 16);
            // Object 0: the free space up to the collection's end, its size counting its own header.
            w.U16(0); w.U16(0); w.U32(0); w.U64((ulong)(size - w.Length));
            w.Zeros(size - w.Length);
            var bytes = w.ToArray();
            BitConverter.TryWriteBytes(bytes.AsSpan(8, 8), (ulong)size);
            return bytes;
        }
    }

    /// <summary>Little-endian encoding into a growing buffer.</summary>
    private sealed class ByteWriter
    {
        private readonly MemoryStream _s = new();
        public int Length => (int)_s.Length;
        public void U8(byte v) => _s.WriteByte(v);
        public void U16(ushort v) { Span<byte> b = stackalloc byte[2]; BitConverter.TryWriteBytes(b, v); _s.Write(b); }
        public void U32(uint v) { Span<byte> b = stackalloc byte[4]; BitConverter.TryWriteBytes(b, v); _s.Write(b); }
        public void U64(ulong v) { Span<byte> b = stackalloc byte[8]; BitConverter.TryWriteBytes(b, v); _s.Write(b); }
        public void Bytes(ReadOnlySpan<byte> b) => _s.Write(b);
        public void Zeros(int n) { for (int i = 0; i < n; i++) _s.WriteByte(0); }
        public void Align8() => Zeros((8 - Length % 8) % 8);
        public byte[] ToArray() => _s.ToArray();
    }
}
