using GigaPath.Runtime;
using System.IO.MemoryMappedFiles;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Weights;

/// <summary>
/// A memory-mapped safetensors file. The header is validated when opened; tensor bytes are copied straight from the
/// mapping into the destination tensor, so a checkpoint is never first read into managed memory.
/// </summary>
public sealed unsafe class SafeTensorsFile : ITensorSource
{
    /// <summary>Headers larger than this are rejected as corrupt (the reference implementation uses the same bound).</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    private readonly Dictionary<string, (TensorInfo Info, long Begin)> _entries;
    private readonly List<string> _order;
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private System.Runtime.InteropServices.GCHandle _pinned;
    private readonly long _dataStart;
    private bool _disposed;

    /// <summary>The file's path.</summary>
    public string Path { get; }
    /// <summary>The file's path, for messages.</summary>
    public string Description => Path;
    /// <summary>Size of the file in bytes.</summary>
    public long FileLength { get; }
    /// <summary>The header's <c>__metadata__</c> strings (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Names of the stored tensors, in header order.</summary>
    public IReadOnlyCollection<string> Names => _order;
    /// <summary>Name, dtype and shape of every stored tensor, in header order.</summary>
    public IReadOnlyList<TensorInfo> Tensors => _order.Select(n => _entries[n].Info).ToList();

    private SafeTensorsFile(string path, long length, Header header, byte[]? bytes)
    {
        Path = path;
        FileLength = length;
        _dataStart = header.DataStart;
        _entries = header.Entries;
        _order = header.Order;
        Metadata = header.Metadata;
        if (bytes is not null)
        {
            // A file held in memory (read from a stream): its bytes stay pinned while the object lives.
            _pinned = System.Runtime.InteropServices.GCHandle.Alloc(bytes, System.Runtime.InteropServices.GCHandleType.Pinned);
            _base = (byte*)_pinned.AddrOfPinnedObject();
        }
        else if (length > 0)
        {
            _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _base = p + _view.PointerOffset;
        }
    }

    /// <summary>Opens and memory-maps a safetensors file, checking the header (offsets, sizes, dtypes) before any tensor is read; dispose it to unmap. Errors throw <see cref="WeightFormatException"/> naming the file and tensor.</summary>
    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path))
            throw new WeightFormatException($"{path}: file not found");
        long length = new FileInfo(path).Length;
        if (length < 8)
            throw new WeightFormatException($"{path}: not a safetensors file (only {length} bytes; the 8-byte header length is missing)");
        Header header;
        using (var fs = File.OpenRead(path))
            header = ReadHeader(path, length, fs);
        return new SafeTensorsFile(path, length, header, null);
    }

    /// <summary>
    /// A safetensors file held in memory (<paramref name="bytes"/>, which must not change while the result lives), checked
    /// like <see cref="Open(string)"/>; <paramref name="name"/> stands for the file in messages.
    /// </summary>
    internal static SafeTensorsFile Open(byte[] bytes, string name)
    {
        if (bytes.Length < 8)
            throw new WeightFormatException($"{name}: not a safetensors file (only {bytes.Length} bytes; the 8-byte header length is missing)");
        using var stream = new MemoryStream(bytes, writable: false);
        return new SafeTensorsFile(name, bytes.Length, ReadHeader(name, bytes.Length, stream), bytes);
    }

    private sealed record Header(long DataStart, Dictionary<string, (TensorInfo, long)> Entries, List<string> Order, Dictionary<string, string> Metadata);

    /// <summary>Reads and checks the header of the <paramref name="length"/>-byte file that <paramref name="fs"/> reads from its start.</summary>
    private static Header ReadHeader(string path, long length, Stream fs)
    {
        byte[] header;
        {
            Span<byte> lenBytes = stackalloc byte[8];
            fs.ReadExactly(lenBytes);
            ulong headerLen = BitConverter.ToUInt64(lenBytes);
            if (headerLen > (ulong)MaxHeaderBytes)
                throw new WeightFormatException($"{path}: header length {headerLen} exceeds the {MaxHeaderBytes}-byte limit (corrupt or not a safetensors file)");
            if ((long)headerLen > length - 8)
                throw new WeightFormatException($"{path}: header length {headerLen} runs past the end of the {length}-byte file (truncated file)");
            header = new byte[headerLen];
            fs.ReadExactly(header);
        }
        long dataStart = 8 + header.Length;
        long dataLength = length - dataStart;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new WeightFormatException($"{path}: header is not valid JSON ({e.Message})", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new WeightFormatException($"{path}: header must be a JSON object");
            var entries = new Dictionary<string, (TensorInfo, long)>(StringComparer.Ordinal);
            var order = new List<string>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var ranges = new List<(long Begin, long End, string Name)>();
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new WeightFormatException($"{path}: __metadata__ must be an object of strings");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new WeightFormatException($"{path}: __metadata__ field '{m.Name}' must be a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                var (info, begin, end) = ParseEntry(path, prop);
                if (end > dataLength)
                    throw new WeightFormatException($"{path}: tensor '{prop.Name}' data_offsets [{begin}, {end}] run past the end of the data ({dataLength} bytes; truncated file?)");
                if (entries.ContainsKey(prop.Name))
                    throw new WeightFormatException($"{path}: tensor '{prop.Name}' appears twice in the header");
                entries[prop.Name] = (info, begin);
                order.Add(prop.Name);
                ranges.Add((begin, end, prop.Name));
            }
            ranges.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            for (int i = 1; i < ranges.Count; i++)
            {
                if (ranges[i].Begin < ranges[i - 1].End)
                    throw new WeightFormatException($"{path}: tensors '{ranges[i - 1].Name}' and '{ranges[i].Name}' overlap in the data section");
            }
            return new Header(dataStart, entries, order, metadata);
        }
    }

    private static (TensorInfo Info, long Begin, long End) ParseEntry(string path, JsonProperty prop)
    {
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object)
            throw new WeightFormatException($"{path}: header entry '{prop.Name}' must be an object");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new WeightFormatException($"{path}: tensor '{prop.Name}' has no dtype");
        if (!TensorDTypes.TryParse(dt.GetString()!, out var dtype))
            throw new WeightFormatException($"{path}: tensor '{prop.Name}' has unsupported dtype '{dt.GetString()}' (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL)");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new WeightFormatException($"{path}: tensor '{prop.Name}' has no shape array");
        var shape = new List<long>();
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long n) || n < 0)
                throw new WeightFormatException($"{path}: tensor '{prop.Name}' has an invalid shape entry '{d}'");
            shape.Add(n);
        }
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new WeightFormatException($"{path}: tensor '{prop.Name}' has no [begin, end] data_offsets");
        if (!off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new WeightFormatException($"{path}: tensor '{prop.Name}' has invalid data_offsets {off}");
        var info = new TensorInfo(prop.Name, dtype, shape.ToArray());
        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * TensorDTypes.SizeOf(dtype));
        }
        catch (OverflowException)
        {
            throw new WeightFormatException($"{path}: tensor '{prop.Name}' shape {info.ShapeText} is too large");
        }
        if (end - begin != expected)
            throw new WeightFormatException($"{path}: tensor '{prop.Name}' {TensorDTypes.Code(dtype)} {info.ShapeText} needs {expected} bytes but data_offsets [{begin}, {end}] hold {end - begin}");
        return (info, begin, end);
    }

    /// <summary>Whether a tensor named <paramref name="name"/> is stored.</summary>
    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>Dtype and shape of <paramref name="name"/>; throws <see cref="WeightFormatException"/> listing the stored names when absent.</summary>
    public TensorInfo GetInfo(string name)
    {
        if (!_entries.TryGetValue(name, out var e))
            throw new WeightFormatException($"{Path}: no tensor named '{name}' (file has: {Preview(_order)})");
        return e.Info;
    }

    internal static string Preview(IEnumerable<string> names, int max = 12)
    {
        var list = names.Take(max + 1).ToList();
        return list.Count > max ? string.Join(", ", list.Take(max)) + ", …" : string.Join(", ", list);
    }

    /// <summary>The raw little-endian bytes of a tensor, straight from the mapping (valid until disposal).</summary>
    public ReadOnlySpan<byte> GetRawBytes(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var (info, begin) = _entries.TryGetValue(name, out var e) ? e : throw new WeightFormatException($"{Path}: no tensor named '{name}'");
        long len = info.ByteLength;
        if (len > int.MaxValue)
            throw new WeightFormatException($"{Path}: tensor '{name}' is 2 GiB or larger; read it with Load or CopyInto");
        return len == 0 ? ReadOnlySpan<byte>.Empty : new ReadOnlySpan<byte>(_base + _dataStart + begin, (int)len);
    }

    /// <summary>
    /// <paramref name="length"/> raw bytes of tensor <paramref name="name"/> from byte <paramref name="offset"/>, straight
    /// from the mapping (valid until disposal): a piece of a tensor of any size, 2 GiB or more included.
    /// </summary>
    public ReadOnlySpan<byte> GetRawBytes(string name, long offset, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var (info, begin) = _entries.TryGetValue(name, out var e) ? e : throw new WeightFormatException($"{Path}: no tensor named '{name}'");
        if (offset < 0 || length < 0 || offset > info.ByteLength - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes {offset}..{offset + length} are outside tensor '{name}' ({info.ByteLength} bytes)");
        return length == 0 ? ReadOnlySpan<byte>.Empty : new ReadOnlySpan<byte>(_base + _dataStart + begin + offset, length);
    }

    /// <summary>Copies tensor <paramref name="name"/>'s bytes into the contiguous CPU tensor <paramref name="destination"/> of the same size, in pieces (it may be 2 GiB or more).</summary>
    private void CopyBytes(string name, Tensor destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var (_, begin) = _entries[name];
        var start = (IntPtr)(_base + _dataStart + begin);
        TensorChunks.ForEach(destination, (chunk, offset) =>
        {
            new ReadOnlySpan<byte>((byte*)start + offset, chunk.Length).CopyTo(chunk);
            // Copied pages leave this process's resident memory (see MappedTensors.DropPages): otherwise loading a
            // model or a slide's features would hold the whole file in memory beside the copy made of it.
            MappedTensors.DropPages((IntPtr)((byte*)start + offset), chunk.Length);
        });
    }

    /// <summary>Reads tensor <paramref name="name"/> into a new CPU tensor owned by the caller (dispose it), converted to <paramref name="dtype"/> when given.</summary>
    public Tensor Load(string name, ScalarType? dtype = null)
    {
        var info = GetInfo(name);
        var stored = TensorDTypes.ToScalarType(info.DType);
        var t = torch.empty(info.Shape, stored);
        CopyBytes(name, t);
        if (dtype is { } target && target != stored)
        {
            var converted = t.to_type(target);
            t.Dispose();
            return converted;
        }
        return t;
    }

    /// <summary>Copies tensor <paramref name="name"/> into <paramref name="destination"/> (same shape; any device and dtype), without an intermediate full-size copy where possible.</summary>
    public void CopyInto(string name, Tensor destination)
    {
        var info = GetInfo(name);
        if (info.ElementCount != destination.numel())
            throw new WeightFormatException($"{Path}: tensor '{name}' has {info.ElementCount} elements {info.ShapeText}, destination has {destination.numel()} [{string.Join(", ", destination.shape)}]");
        var stored = TensorDTypes.ToScalarType(info.DType);
        using var _ = torch.no_grad();
        if (destination.dtype == stored && destination.device_type == DeviceType.CPU && destination.is_contiguous())
        {
            // Straight from the mapping into the parameter: no temporary tensor.
            CopyBytes(name, destination);
            return;
        }
        // The scope also frees the reshape view: an undisposed view would keep each converted temporary alive until
        // the GC runs, i.e. a second copy of the whole checkpoint while loading float32 weights into a bfloat16 model.
        using var scope = torch.NewDisposeScope();
        destination.copy_(Load(name).reshape(destination.shape));
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
        if (_pinned.IsAllocated) _pinned.Free();
    }
}
