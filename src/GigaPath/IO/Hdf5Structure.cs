using System.Buffers.Binary;
using System.Text;

namespace GigaPath.IO;

/// <summary>
/// An HDF5 file that the tile-feature reader refuses because of how it is built rather than what it declares: a
/// dataset reached through a link to another file, a virtual dataset or external storage (which would make us read
/// files other than the one given), a soft-link cycle or chain too long to follow, a group where a dataset is
/// expected, a filter or chunk layout the reader does not handle. The message names the file, the dataset and the link
/// or filter. The CLI exits 2; the server answers 400.
/// </summary>
public sealed class Hdf5StructureException : GigaPathException
{
    /// <summary>Creates the exception; <paramref name="message"/> names the file, the dataset and what is refused.</summary>
    public Hdf5StructureException(string message) : base(message) { }
}

/// <summary>
/// Reads the structure of an HDF5 file — superblock, object headers, group links — without following anything, so the
/// tile-feature datasets can be checked before PureHDF opens them. PureHDF resolves every soft and external link it
/// meets, recursively and without a limit: a soft link to itself overflows the stack (the process dies), and an
/// external link or a virtual dataset reads another file of the server's. Here links are resolved one at a time: hard
/// and soft links inside the file only, at most <see cref="MaxSoftLinks"/> soft links per lookup (libhdf5's own
/// limit) with cycle detection, every read bounded by the file's length, and the resolved path handed to PureHDF is
/// made of hard links alone.
/// </summary>
internal sealed class Hdf5Structure : IDisposable
{
    /// <summary>Soft links followed in one lookup at most: libhdf5's default (H5L_NUM_LINKS).</summary>
    public const int MaxSoftLinks = 16;

    /// <summary>The filters PureHDF decodes (registered by default), by HDF5 filter id.</summary>
    private static readonly Dictionary<int, string> SupportedFilters = new()
    {
        [1] = "deflate", [2] = "shuffle", [3] = "fletcher32", [5] = "nbit", [6] = "scaleoffset",
    };

    private static readonly Dictionary<int, string> KnownFilters = new()
    {
        [4] = "szip", [32000] = "lzf", [32001] = "blosc", [32004] = "lz4", [32008] = "bitshuffle", [32013] = "zfp",
        [32015] = "zstd", [32017] = "sz", [32026] = "blosc2",
    };

    private const int MaxHeaderChunks = 1024;
    private const int MaxMessages = 65536;
    private const int MaxLinks = 1 << 20;
    private const int MaxTreeDepth = 32;

    private readonly Stream _file;
    private readonly bool _leaveOpen;
    private readonly string _path;
    private readonly long _length;
    private readonly long _base;
    private readonly int _offsetSize;
    private readonly int _lengthSize;
    private readonly long _root;

    /// <summary>What a dataset is made of, as far as the reader needs to know before reading it.</summary>
    /// <param name="HardPath">Its path through hard links alone (what PureHDF is given).</param>
    /// <param name="TypeClass">HDF5 datatype class (0 fixed-point, 1 floating-point, …).</param>
    /// <param name="TypeSize">Bytes per element.</param>
    /// <param name="BigEndian">True when the elements are stored most significant byte first.</param>
    /// <param name="Signed">True for a signed fixed-point type.</param>
    /// <param name="Dims">The dataset's current dimensions.</param>
    /// <param name="Address">Its object header's address.</param>
    internal sealed record DatasetFacts(string HardPath, int TypeClass, int TypeSize, bool BigEndian, bool Signed, long[] Dims, long Address);

    /// <summary>The root group's object header address.</summary>
    public long RootAddress => _root;

    /// <summary>
    /// Reads one big-endian number of HDF5 type class <paramref name="typeClass"/> (0 fixed-point, 1 floating-point) and
    /// <paramref name="size"/> bytes; null for a type it does not convert. PureHDF converts no byte order, so the
    /// reader converts big-endian datasets and attributes with this.
    /// </summary>
    public static Func<ReadOnlySpan<byte>, double>? BigEndianReader(int typeClass, int size, bool signed) => (typeClass, size, signed) switch
    {
        (1, 8, _) => b => BinaryPrimitives.ReadDoubleBigEndian(b),
        (1, 4, _) => b => BinaryPrimitives.ReadSingleBigEndian(b),
        (1, 2, _) => b => (double)BinaryPrimitives.ReadHalfBigEndian(b),
        (0, 8, true) => b => BinaryPrimitives.ReadInt64BigEndian(b),
        (0, 8, false) => b => BinaryPrimitives.ReadUInt64BigEndian(b),
        (0, 4, true) => b => BinaryPrimitives.ReadInt32BigEndian(b),
        (0, 4, false) => b => BinaryPrimitives.ReadUInt32BigEndian(b),
        (0, 2, true) => b => BinaryPrimitives.ReadInt16BigEndian(b),
        (0, 2, false) => b => BinaryPrimitives.ReadUInt16BigEndian(b),
        (0, 1, true) => b => (sbyte)b[0],
        (0, 1, false) => b => b[0],
        _ => null,
    };

    /// <summary>
    /// The big-endian numeric attributes (scalars and 1-D arrays; integers as long, floats as double) stored in the
    /// object header at <paramref name="address"/>: those PureHDF cannot read. Others, and attributes kept in dense
    /// storage, are left to PureHDF.
    /// </summary>
    public Dictionary<string, object> BigEndianAttributes(long address, string what)
    {
        var result = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var (type, body) in Messages(address, what))
        {
            if (type != 0x000C || body.Length < 8) continue;
            int version = body[0];
            if (version is not (1 or 2 or 3) || (version > 1 && (body[1] & 0x03) != 0)) continue; // shared types: not numbers of ours
            int nameSize = BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(2));
            int typeSize = BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(4));
            int spaceSize = BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(6));
            int Pad(int n) => version == 1 ? (n + 7) & ~7 : n;
            int p = version == 3 ? 9 : 8;
            if (p + Pad(nameSize) + Pad(typeSize) + Pad(spaceSize) > body.Length || nameSize == 0 || typeSize < 8) continue;
            var name = Encoding.UTF8.GetString(body, p, nameSize).TrimEnd('\0');
            var datatype = body.AsSpan(p + Pad(nameSize), typeSize);
            var space = body.AsSpan(p + Pad(nameSize) + Pad(typeSize), spaceSize).ToArray();
            int data = p + Pad(nameSize) + Pad(typeSize) + Pad(spaceSize);
            int typeClass = datatype[0] & 0x0F, size = (int)BinaryPrimitives.ReadUInt32LittleEndian(datatype[4..]);
            if (typeClass is not (0 or 1) || (datatype[1] & 1) == 0) continue;
            var read = BigEndianReader(typeClass, size, typeClass == 0 && (datatype[1] & 0x08) != 0);
            if (read is null || space.Length < 4) continue;
            int rank = space[1];
            if (rank > 1) continue;
            long count = rank == 0 ? 1 : Dimensions(name, space)[0];
            if (count < 0 || data + count * size > body.Length) continue;
            var values = new double[count];
            for (int i = 0; i < count; i++) values[i] = read(body.AsSpan(data + i * size, size));
            result[name] = (typeClass, rank) switch
            {
                (1, 0) => values[0],
                (1, _) => values,
                (_, 0) => (long)values[0],
                _ => Array.ConvertAll(values, v => (long)v),
            };
        }
        return result;
    }

    /// <summary>
    /// A chunk may exceed this only when the dataset declares at least as much data: PureHDF allocates a whole chunk
    /// to read any part of it, so a 5,000,000-row chunk over a 10-row dataset would cost gigabytes (or overflow).
    /// </summary>
    public const long MaxChunkBytes = 16L << 20;

    private sealed record Link(string Name, int Kind, long Address, string? Target, string? File);

    private Hdf5Structure(string path, Stream file, bool leaveOpen = false)
    {
        _path = path;
        _file = file;
        _leaveOpen = leaveOpen;
        _length = file.Length;
        long signature = -1;
        for (long at = 0; at + 8 <= _length && at <= 1L << 40; at = at == 0 ? 512 : at * 2)
        {
            if (Read(at, 8).AsSpan().SequenceEqual(TileFeatureH5.Signature)) { signature = at; break; }
        }
        if (signature < 0) throw Corrupt("no HDF5 signature");
        var head = Read(signature, (int)Math.Min(128, _length - signature));
        int version = head[8];
        int p;
        if (version is 0 or 1)
        {
            if (head.Length < 24) throw Corrupt("the superblock is cut short");
            (_offsetSize, _lengthSize) = (head[13], head[14]);
            p = version == 1 ? 28 : 24;
        }
        else if (version is 2 or 3)
        {
            (_offsetSize, _lengthSize) = (head[9], head[10]);
            p = 12;
        }
        else throw Corrupt($"superblock version {version} is not one HDF5 defines");
        if (_offsetSize is not (2 or 4 or 8) || _lengthSize is not (2 or 4 or 8)) throw Corrupt($"address size {_offsetSize}, length size {_lengthSize}");
        if (p + 4 * _offsetSize + 2 * _offsetSize > head.Length) throw Corrupt("the superblock is cut short");
        _base = Offset(head, ref p);
        if (version is 0 or 1)
        {
            p += 3 * _offsetSize;         // free space, end of file, driver information
            p += _offsetSize;             // root entry: link name offset
            _root = Offset(head, ref p);  // root entry: object header address
        }
        else
        {
            p += 2 * _offsetSize;         // superblock extension, end of file
            _root = Offset(head, ref p);
        }
    }

    /// <summary>Opens <paramref name="path"/>; throws <see cref="GigaPathException"/> when it is not HDF5.</summary>
    public static Hdf5Structure Open(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.RandomAccess);
        try
        {
            return new Hdf5Structure(path, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads the HDF5 file that the seekable <paramref name="stream"/> holds from position 0 (left open);
    /// <paramref name="name"/> stands for it in messages.
    /// </summary>
    public static Hdf5Structure Open(Stream stream, string name) => new(name, stream, leaveOpen: true);

    public void Dispose()
    {
        if (!_leaveOpen) _file.Dispose();
    }

    /// <summary>The names linked from the root group (for messages), without following any of them.</summary>
    public IReadOnlyList<string> RootNames() => Links(_root, "/").Select(l => l.Name).ToList();

    /// <summary>
    /// Resolves <paramref name="name"/> from the root group and checks what it points to; null when there is no such
    /// link. Throws <see cref="Hdf5StructureException"/> naming the dataset for a link to another file, a user-defined
    /// link, a soft-link cycle or chain over <see cref="MaxSoftLinks"/>, a group, a virtual dataset, external storage
    /// or a filter PureHDF cannot decode.
    /// </summary>
    public DatasetFacts? Dataset(string name)
    {
        var resolved = Resolve(name);
        if (resolved is not { } r) return null;
        return Facts(name, r.Address, r.HardPath);
    }

    private (long Address, string HardPath)? Resolve(string name)
    {
        var pending = new Queue<string>(name.Split('/'));
        long group = _root;
        var hardPath = new List<string>();
        var followed = new HashSet<(long, string)>();
        int softLinks = 0;
        string at = "/";
        while (pending.Count > 0)
        {
            var segment = pending.Dequeue();
            if (segment is "" or ".") continue;
            var link = Links(group, at).FirstOrDefault(l => l.Name == segment);
            if (link is null) return null;
            switch (link.Kind)
            {
                case 0:
                    if (pending.All(s => s is "" or "."))
                        return (link.Address, "/" + string.Join("/", hardPath.Append(segment)));
                    group = link.Address;
                    hardPath.Add(segment);
                    at = "/" + string.Join("/", hardPath);
                    break;
                case 1:
                    if (!followed.Add((group, segment)))
                        throw Refused(name, $"is a soft link that leads back to itself ('{Join(at, segment)}' → '{link.Target}' …): a link cycle");
                    if (++softLinks > MaxSoftLinks)
                        throw Refused(name, $"goes through more than {MaxSoftLinks} soft links ('{Join(at, segment)}' → '{link.Target}' …); at most {MaxSoftLinks} are followed");
                    var target = link.Target ?? "";
                    var rest = pending.ToList();
                    pending = new Queue<string>(target.Split('/').Concat(rest));
                    if (target.StartsWith('/'))
                    {
                        group = _root;
                        hardPath.Clear();
                        at = "/";
                    }
                    break;
                case 64:
                    throw Refused(name, $"is an external link to '{link.File}' (object '{link.Target}'); links to other files are not followed");
                default:
                    throw Refused(name, $"is a user-defined link (type {link.Kind}); only hard and soft links within the file are followed");
            }
        }
        return null;
    }

    private static string Join(string group, string name) => group == "/" ? "/" + name : group + "/" + name;

    private DatasetFacts Facts(string name, long address, string hardPath)
    {
        var messages = Messages(address, hardPath);
        if (messages.Any(m => m.Type is 0x0002 or 0x0011))
            throw Refused(name, $"is a group ('{hardPath}'), not a dataset");
        var layout = messages.FirstOrDefault(m => m.Type == 0x0008).Body
            ?? throw Refused(name, $"('{hardPath}') is not a dataset (it has no data layout)");
        if (messages.Any(m => m.Type == 0x0007))
            throw Refused(name, "stores its data in external files (HDF5 external storage); only data inside the file is read");
        var type = messages.FirstOrDefault(m => m.Type == 0x0003).Body ?? throw Refused(name, "has no datatype");
        if (type.Length < 8) throw Refused(name, "has a truncated datatype");
        int typeClass = type[0] & 0x0F;
        int typeSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(type.AsSpan(4));
        bool bigEndian = typeClass is 0 or 1 && (type[1] & 1) != 0;
        bool signed = typeClass == 0 && (type[1] & 0x08) != 0;
        var space = messages.FirstOrDefault(m => m.Type == 0x0001).Body ?? throw Refused(name, "has no dataspace");
        var dims = Dimensions(name, space);

        long? chunkBytes = null;
        int layoutVersion = layout.Length > 0 ? layout[0] : 0;
        if (layoutVersion is 3 or 4)
        {
            int layoutClass = layout.Length > 1 ? layout[1] : -1;
            if (layoutClass == 3)
                throw Refused(name, "is a virtual dataset (its data is mapped from other datasets or files); only data stored in the dataset is read");
            if (layoutClass == 2)
            {
                chunkBytes = ChunkBytes(name, layout, layoutVersion);
                if (layoutVersion == 3)
                {
                    int q = 3;
                    CheckChunkTree(name, Offset(layout, ref q), layout[2]);
                }
            }
        }
        else if (layoutVersion is 1 or 2 && layout.Length > 2 && layout[2] == 2)
        {
            // Versions 1 and 2: dimensionality, class, 5 reserved bytes, the B-tree address, then the chunk dimensions (the last is the element size).
            int rank = layout[1];
            int p = 8 + _offsetSize;
            chunkBytes = Product(layout, p, rank, 4);
            int q = 8;
            CheckChunkTree(name, Offset(layout, ref q), rank);
        }

        var filters = messages.FirstOrDefault(m => m.Type == 0x000B).Body;
        if (filters is not null)
            foreach (var (id, filterName) in Filters(name, filters))
                if (!SupportedFilters.ContainsKey(id))
                    throw Refused(name, $"is compressed with the HDF5 filter '{filterName ?? (KnownFilters.TryGetValue(id, out var n) ? n : "unknown")}' (id {id}), which this reader " +
                                        $"does not decode (supported: {string.Join(", ", SupportedFilters.Values)}); rewrite it with gzip or without compression");
        long declared = Product(dims.Append(typeSize));
        if (chunkBytes is { } chunk && chunk > MaxChunkBytes && chunk > declared)
            throw Refused(name, $"has chunks of {chunk:N0} bytes for {declared:N0} bytes of data (shape [{string.Join(", ", dims)}]); " +
                                $"chunks over {MaxChunkBytes >> 20} MiB are read only for datasets at least as large");
        return new DatasetFacts(hardPath, typeClass, typeSize, bigEndian, signed, dims, address);
    }

    /// <summary>
    /// Walks the version-1 B-tree that indexes a dataset's chunks: every child of a node at level L &gt; 0 must be a
    /// chunk node at level L - 1, seen once. PureHDF follows child pointers recursively and trusts the parent's level,
    /// so a node that lists itself as its child would recurse until the stack overflows.
    /// </summary>
    private void CheckChunkTree(string name, long root, int dimensionality)
    {
        if (root == Undefined) return; // no chunk written yet
        int keySize = 8 + 8 * dimensionality;
        var visited = new HashSet<long>();
        var pending = new Queue<(long Address, int Level)>();
        pending.Enqueue((root, -1));
        while (pending.Count > 0)
        {
            var (address, expected) = pending.Dequeue();
            if (!visited.Add(address))
                throw Refused(name, $"has a chunk index (B-tree) whose node at address {address:N0} is reached twice: a loop");
            var head = Read(address, 8 + 2 * _offsetSize);
            if (!head.AsSpan(0, 4).SequenceEqual("TREE"u8) || head[4] != 1)
                throw Refused(name, $"has a chunk index whose node at address {address:N0} is not a chunk B-tree node");
            int level = head[5], entries = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(6));
            if (expected >= 0 && level != expected)
                throw Refused(name, $"has a chunk index whose node at address {address:N0} is at level {level} under a node at level {expected + 1}");
            if (level == 0) continue;
            var body = Read(address + head.Length, entries * (keySize + _offsetSize) + keySize);
            for (int i = 0; i < entries; i++)
            {
                int p = keySize + i * (keySize + _offsetSize);
                pending.Enqueue((Offset(body, ref p), level - 1));
            }
        }
    }

    private long ChunkBytes(string name, byte[] layout, int version)
    {
        if (version == 3)
        {
            // Version 3: class, dimensionality (rank + 1), B-tree address, 4-byte dimensions (the last is the element size).
            if (layout.Length < 3) throw Refused(name, "has a truncated data layout");
            int rank = layout[2];
            return Product(layout, 3 + _offsetSize, rank, 4);
        }
        // Version 4: class, flags, dimensionality, bytes per dimension, the dimensions (the element size is the last).
        if (layout.Length < 5) throw Refused(name, "has a truncated data layout");
        return Product(layout, 5, layout[3], layout[4]);
    }

    private long[] Dimensions(string name, byte[] space)
    {
        if (space.Length < 4) throw Refused(name, "has a truncated dataspace");
        int version = space[0], rank = space[1];
        int p = version == 1 ? 8 : 4;
        if (p + rank * _lengthSize > space.Length) throw Refused(name, "has a truncated dataspace");
        var dims = new long[rank];
        for (int i = 0; i < rank; i++) dims[i] = UInt(space, ref p, _lengthSize);
        return dims;
    }

    private static long Product(IEnumerable<long> values)
    {
        long product = 1;
        foreach (var v in values)
        {
            if (v <= 0) return 0;
            product = v > long.MaxValue / product ? long.MaxValue : product * v;
        }
        return product;
    }

    /// <summary>The product of <paramref name="count"/> little-endian integers of <paramref name="width"/> bytes, saturating at long.MaxValue.</summary>
    private long Product(byte[] body, int start, int count, int width)
    {
        if (width is < 1 or > 8 || start + count * width > body.Length) throw Corrupt("a data layout message is cut short");
        long product = 1;
        for (int i = 0; i < count; i++)
        {
            ulong v = 0;
            for (int b = width - 1; b >= 0; b--) v = (v << 8) | body[start + i * width + b];
            if (v == 0) return 0;
            product = v > (ulong)(long.MaxValue / product) ? long.MaxValue : product * (long)v;
        }
        return product;
    }

    private IEnumerable<(int Id, string? Name)> Filters(string name, byte[] body)
    {
        if (body.Length < 2) throw Refused(name, "has a truncated filter pipeline");
        int version = body[0], count = body[1];
        int p = version == 1 ? 8 : 2;
        for (int i = 0; i < count; i++)
        {
            if (p + 2 > body.Length) throw Refused(name, "has a truncated filter pipeline");
            int id = BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(p));
            int nameLength = 0;
            p += 2;
            if (version == 1 || id >= 256)
            {
                if (p + 2 > body.Length) throw Refused(name, "has a truncated filter pipeline");
                nameLength = BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(p));
                p += 2;
            }
            if (p + 4 > body.Length) throw Refused(name, "has a truncated filter pipeline");
            int values = BinaryPrimitives.ReadUInt16LittleEndian(body.AsSpan(p + 2));
            p += 4;
            string? filterName = null;
            if (nameLength > 0 && p + nameLength <= body.Length)
                filterName = Encoding.ASCII.GetString(body, p, nameLength).TrimEnd('\0');
            p += version == 1 ? (nameLength + 7) & ~7 : nameLength;
            p += 4 * values;
            if (version == 1 && values % 2 == 1) p += 4;
            yield return (id, filterName);
        }
    }

    // ---- groups ----

    private List<Link> Links(long group, string where)
    {
        var messages = Messages(group, where);
        var links = new List<Link>();
        var table = messages.FirstOrDefault(m => m.Type == 0x0011).Body;
        if (table is not null)
        {
            int p = 0;
            long tree = Offset(table, ref p), heap = Offset(table, ref p);
            var names = LocalHeap(heap, where);
            SymbolTable(tree, names, links, new HashSet<long>(), 0, where);
            return links;
        }
        var info = messages.FirstOrDefault(m => m.Type == 0x0002).Body;
        if (info is not null)
        {
            int p = 2 + ((info.Length > 1 && (info[1] & 1) != 0) ? 8 : 0);
            long fractalHeap = Offset(info, ref p);
            if (fractalHeap != Undefined)
                throw new Hdf5StructureException($"{_path}: group '{where}' stores its links densely (in a fractal heap, more than 8 links), " +
                                                 "which this reader does not follow; rewrite the file with h5py's defaults (no track_order, libver 'earliest')");
        }
        foreach (var m in messages.Where(m => m.Type == 0x0006))
            links.Add(LinkMessage(m.Body, where));
        return links;
    }

    private Link LinkMessage(byte[] b, string where)
    {
        try
        {
            int flags = b[1], p = 2;
            int kind = (flags & 0x08) != 0 ? b[p++] : 0;
            if ((flags & 0x04) != 0) p += 8;
            if ((flags & 0x10) != 0) p++;
            int lengthSize = 1 << (flags & 3);
            long nameLength = UInt(b, ref p, lengthSize);
            var name = Encoding.UTF8.GetString(b, p, checked((int)nameLength));
            p += (int)nameLength;
            switch (kind)
            {
                case 0:
                    return new Link(name, 0, Offset(b, ref p), null, null);
                case 1:
                {
                    int n = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(p));
                    return new Link(name, 1, 0, Encoding.UTF8.GetString(b, p + 2, n).TrimEnd('\0'), null);
                }
                case 64:
                {
                    int n = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(p));
                    var parts = Encoding.UTF8.GetString(b, p + 3, Math.Max(0, n - 1)).Split('\0');
                    return new Link(name, 64, 0, parts.Length > 1 ? parts[1] : "", parts[0]);
                }
                default:
                    return new Link(name, kind, 0, null, null);
            }
        }
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or OverflowException)
        {
            throw Corrupt($"a link in group '{where}' is cut short");
        }
    }

    private void SymbolTable(long node, byte[] names, List<Link> links, HashSet<long> visited, int depth, string where)
    {
        if (depth > MaxTreeDepth || !visited.Add(node)) throw Corrupt($"the symbol table of group '{where}' loops or is too deep");
        var head = Read(node, 8 + 2 * _offsetSize);
        if (!head.AsSpan(0, 4).SequenceEqual("TREE"u8) || head[4] != 0) throw Corrupt($"group '{where}': a symbol table node is not a group B-tree node");
        int level = head[5], entries = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(6));
        int step = _lengthSize + _offsetSize;
        var body = Read(node + head.Length, entries * step + _lengthSize);
        for (int i = 0; i < entries; i++)
        {
            int p = _lengthSize + i * step;
            long child = Offset(body, ref p);
            if (level > 0) SymbolTable(child, names, links, visited, depth + 1, where);
            else SymbolNode(child, names, links, where);
        }
    }

    private void SymbolNode(long address, byte[] names, List<Link> links, string where)
    {
        var head = Read(address, 8);
        if (!head.AsSpan(0, 4).SequenceEqual("SNOD"u8)) throw Corrupt($"group '{where}': a symbol table entry block is not one");
        int count = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(6));
        int entrySize = 2 * _offsetSize + 8 + 16;
        var body = Read(address + 8, count * entrySize);
        for (int i = 0; i < count; i++)
        {
            if (links.Count >= MaxLinks) throw Corrupt($"group '{where}' has more than {MaxLinks:N0} links");
            int p = i * entrySize;
            long nameOffset = Offset(body, ref p);
            long header = Offset(body, ref p);
            int cache = (int)BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(p));
            var name = HeapString(names, nameOffset, where);
            if (cache == 2)
            {
                long valueOffset = BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(p + 8));
                links.Add(new Link(name, 1, 0, HeapString(names, valueOffset, where), null));
            }
            else links.Add(new Link(name, 0, header, null, null));
        }
    }

    private byte[] LocalHeap(long address, string where)
    {
        var head = Read(address, 8 + 2 * _lengthSize + _offsetSize);
        if (!head.AsSpan(0, 4).SequenceEqual("HEAP"u8)) throw Corrupt($"group '{where}': its name heap is not a local heap");
        int p = 8;
        long size = UInt(head, ref p, _lengthSize);
        p += _lengthSize;
        long data = Offset(head, ref p);
        if (size > 1 << 26) throw Corrupt($"group '{where}': a name heap of {size:N0} bytes");
        return Read(data, (int)size);
    }

    private string HeapString(byte[] heap, long offset, string where)
    {
        if (offset < 0 || offset >= heap.Length) throw Corrupt($"group '{where}': a link name lies outside its heap");
        int end = Array.IndexOf(heap, (byte)0, (int)offset);
        if (end < 0) end = heap.Length;
        return Encoding.UTF8.GetString(heap, (int)offset, end - (int)offset);
    }

    // ---- object headers ----

    private List<(int Type, byte[] Body)> Messages(long address, string what)
    {
        var messages = new List<(int, byte[])>();
        var head = Read(address, (int)Math.Min(16, _length - Absolute(address)));
        var chunks = new Queue<(long Start, long Length, bool V2, bool Continuation)>();
        var seen = new HashSet<long>();
        bool v2 = head.Length >= 6 && head.AsSpan(0, 4).SequenceEqual("OHDR"u8);
        bool creationOrder = false;
        if (v2)
        {
            int flags = head[5], p = 6;
            creationOrder = (flags & 0x04) != 0;
            if ((flags & 0x20) != 0) p += 16;
            if ((flags & 0x10) != 0) p += 4;
            var sizeBytes = Read(address + p, 1 << (flags & 3));
            int q = 0;
            long size = UInt(sizeBytes, ref q, sizeBytes.Length);
            chunks.Enqueue((address + p + sizeBytes.Length, size, true, false));
        }
        else
        {
            if (head.Length < 16 || head[0] != 1) throw Corrupt($"'{what}' does not point to an object header");
            chunks.Enqueue((address + 16, BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(8)), false, false));
        }
        while (chunks.Count > 0)
        {
            var (start, length, isV2, continuation) = chunks.Dequeue();
            if (!seen.Add(start) || seen.Count > MaxHeaderChunks) throw Corrupt($"the object header of '{what}' loops or has over {MaxHeaderChunks} pieces");
            if (length > 1 << 24) throw Corrupt($"the object header of '{what}' has a piece of {length:N0} bytes");
            var chunk = Read(start, (int)length);
            int p = 0, end = chunk.Length;
            if (isV2 && continuation)
            {
                if (!chunk.AsSpan(0, Math.Min(4, chunk.Length)).SequenceEqual("OCHK"u8)) throw Corrupt($"the object header of '{what}' continues at a block that is not one");
                p = 4;
            }
            if (isV2) end -= 4; // checksum
            int headerSize = isV2 ? 4 + (creationOrder ? 2 : 0) : 8;
            while (p + headerSize <= end)
            {
                int type = isV2 ? chunk[p] : BinaryPrimitives.ReadUInt16LittleEndian(chunk.AsSpan(p));
                int size = BinaryPrimitives.ReadUInt16LittleEndian(chunk.AsSpan(p + (isV2 ? 1 : 2)));
                p += headerSize;
                if (p + size > chunk.Length) throw Corrupt($"a message in the object header of '{what}' runs past its block");
                var body = chunk.AsSpan(p, size).ToArray();
                p += size;
                if (++_messageCount > MaxMessages) throw Corrupt($"more than {MaxMessages:N0} object header messages");
                if (type == 0x0010)
                {
                    int q = 0;
                    long at = Offset(body, ref q);
                    long len = UInt(body, ref q, _lengthSize);
                    chunks.Enqueue((at, len, isV2, true));
                }
                else messages.Add((type, body));
            }
        }
        return messages;
    }

    private int _messageCount;

    // ---- bytes ----

    private long Undefined => _offsetSize == 8 ? -1 : (1L << (8 * _offsetSize)) - 1;

    private long Absolute(long address) => _base + address;

    private byte[] Read(long address, int count)
    {
        long at = Absolute(address);
        if (address < 0 || count < 0 || at < 0 || at > _length - count)
            throw Corrupt($"a structure at address {address:N0} ({count:N0} bytes) lies outside the file ({_length:N0} bytes)");
        var buffer = new byte[count];
        _file.Position = at;
        _file.ReadExactly(buffer);
        return buffer;
    }

    private long Offset(byte[] b, ref int p)
    {
        long v = UInt(b, ref p, _offsetSize);
        return v == Undefined ? Undefined : v;
    }

    private static long UInt(byte[] b, ref int p, int size)
    {
        if (p + size > b.Length) throw new IndexOutOfRangeException();
        ulong v = 0;
        for (int i = size - 1; i >= 0; i--) v = (v << 8) | b[p + i];
        p += size;
        return v > long.MaxValue ? -1 : (long)v;
    }

    private Hdf5StructureException Refused(string dataset, string what) => new($"{_path}: dataset '{dataset}' {what}");

    private GigaPathException Corrupt(string what) => new($"{_path}: not a readable HDF5 file ({what})");
}
