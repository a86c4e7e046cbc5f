using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Weights;

/// <summary>
/// Writes safetensors files atomically: everything goes to a temporary file in the same folder, which is flushed
/// and renamed over the destination, so a crash never leaves a half-written output behind.
/// </summary>
public static class SafeTensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> (any device and dtype; copied to the CPU as needed, the caller keeps ownership) in the given order, with <paramref name="metadata"/> as <c>__metadata__</c>, atomically to <paramref name="path"/>.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        WriteTensors(tensors, metadata, (header, data) => WriteFile(path, header, data));
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> as a safetensors file to <paramref name="stream"/> (a response body, a
    /// memory stream), from its current position; the stream is left open. Unlike the path overloads this is not
    /// atomic: a failure leaves what was written.
    /// </summary>
    /// <param name="stream">A writable stream.</param>
    /// <param name="tensors">Name and tensor pairs (any device and dtype; copied to the CPU as needed, the caller keeps ownership), in file order.</param>
    /// <param name="metadata">The <c>__metadata__</c> strings, or null.</param>
    /// <exception cref="ArgumentException">A name is duplicated or reserved, or the stream is not writable.</exception>
    public static void WriteTo(Stream stream, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite) throw new ArgumentException("the stream is not writable", nameof(stream));
        WriteTensors(tensors, metadata, (header, data) => WriteData(stream, header, data));
    }

    private static void WriteTensors(IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata,
        Action<byte[], Action<Stream>> write)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var items = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, _) in items)
        {
            if (name == "__metadata__" || !names.Add(name))
                throw new ArgumentException($"tensor name '{name}' is reserved or duplicated", nameof(tensors));
        }

        using var scope = torch.NewDisposeScope();
        var prepared = new List<(string Name, TensorDType DType, long[] Shape, Tensor Data)>();
        foreach (var (name, t) in items)
        {
            var cpu = t.detach().cpu().contiguous();
            prepared.Add((name, TensorDTypes.FromScalarType(cpu.dtype), cpu.shape, cpu));
        }

        var headerBytes = BuildHeader(prepared.Select(p => (p.Name, p.DType, p.Shape)), metadata);
        write(headerBytes, stream =>
        {
            foreach (var p in prepared)
                TensorChunks.ForEach(p.Data, (chunk, _) => stream.Write(chunk));
        });
    }

    /// <summary>
    /// Streams tensors described by <paramref name="entries"/> one at a time: <paramref name="produce"/> returns each
    /// tensor (it must have the declared dtype and shape) and it is disposed once written. For checkpoints too large
    /// to hold twice in memory.
    /// </summary>
    public static void Write(string path, IReadOnlyList<TensorInfo> entries, Func<TensorInfo, Tensor> produce, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var headerBytes = BuildHeader(entries.Select(e => (e.Name, e.DType, e.Shape)), metadata);
        WriteFile(path, headerBytes, stream =>
        {
            foreach (var e in entries)
            {
                using var scope = torch.NewDisposeScope();
                var t = produce(e).cpu().contiguous();
                if (t.dtype != TensorDTypes.ToScalarType(e.DType) || !t.shape.SequenceEqual(e.Shape))
                    throw new InvalidOperationException($"tensor '{e.Name}' was produced as {t.dtype} [{string.Join(", ", t.shape)}], declared {TensorDTypes.Code(e.DType)} {e.ShapeText}");
                TensorChunks.ForEach(t, (chunk, _) => stream.Write(chunk));
            }
        });
    }

    private static void WriteFile(string path, byte[] headerBytes, Action<Stream> writeData) =>
        AtomicFile.Write(path, stream => WriteData(stream, headerBytes, writeData));

    /// <summary>The file's bytes: the header's length, the header, then the data.</summary>
    private static void WriteData(Stream stream, byte[] headerBytes, Action<Stream> writeData)
    {
        Span<byte> len = stackalloc byte[8];
        BitConverter.TryWriteBytes(len, (ulong)headerBytes.Length);
        stream.Write(len);
        stream.Write(headerBytes);
        writeData(stream);
    }

    /// <summary>Writes <paramref name="tensors"/> (any device and dtype; the caller keeps ownership) with <paramref name="metadata"/> as <c>__metadata__</c>, atomically to <paramref name="path"/>.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        => Write(path, tensors.AsEnumerable(), metadata);

    internal static byte[] BuildHeader(IEnumerable<(string Name, TensorDType DType, long[] Shape)> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata)
                    w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, dtype, shape) in entries)
            {
                long bytes = shape.Aggregate(1L, (a, b) => a * b) * TensorDTypes.SizeOf(dtype);
                w.WriteStartObject(name);
                w.WriteString("dtype", TensorDTypes.Code(dtype));
                w.WriteStartArray("shape");
                foreach (var d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        // Pad with spaces so the data section starts 8-byte aligned, as the format recommends.
        var json = ms.ToArray();
        int pad = (8 - json.Length % 8) % 8;
        var result = new byte[json.Length + pad];
        json.CopyTo(result, 0);
        for (int i = json.Length; i < result.Length; i++) result[i] = (byte)' ';
        return result;
    }
}
