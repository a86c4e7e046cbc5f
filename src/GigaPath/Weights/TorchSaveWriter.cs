using System.Buffers.Binary;
using System.Text;

namespace GigaPath.Weights;

/// <summary>
/// Writes one tensor the way <c>torch.save(tensor, f)</c> does (zip format, pickle protocol 2), so that a client
/// can read it with <c>torch.load(f, weights_only=True)</c>. This is the payload of Azure ML's Prov-GigaPath
/// endpoint (<c>image_features</c>), which clients decode with PyTorch; matching it makes the server a drop-in.
/// </summary>
/// <remarks>
/// Layout, as PyTorch 2.x writes it: a stored (uncompressed) zip with <c>archive/data.pkl</c>,
/// <c>archive/byteorder</c>, <c>archive/data/0</c>, <c>archive/version</c> and <c>archive/.data/serialization_id</c>,
/// each record's data aligned to 64 bytes with an <c>FB</c> padding extra field. The pickle is
/// <c>_rebuild_tensor_v2(persistent_id(('storage', torch.FloatStorage, '0', 'cpu', numel)), 0, shape, stride, False, OrderedDict())</c>.
/// Output is deterministic: the same tensor gives the same bytes.
/// </remarks>
public static class TorchSaveWriter
{
    private const string Archive = "archive/";
    private const int Alignment = 64;

    /// <summary>The bytes of <c>torch.save</c> of a contiguous float32 tensor with the given shape.</summary>
    /// <param name="values">The tensor's elements in row-major order.</param>
    /// <param name="shape">Its shape; the product of the dimensions must equal the number of values.</param>
    /// <exception cref="ArgumentException">The shape has a negative dimension or does not fit the values.</exception>
    public static byte[] Serialize(ReadOnlySpan<float> values, ReadOnlySpan<long> shape) =>
        Serialize(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values), TensorDType.F32, shape);

    /// <summary>The bytes of <c>torch.save</c> of a contiguous tensor: <paramref name="data"/> holds its elements, little-endian.</summary>
    internal static byte[] Serialize(ReadOnlySpan<byte> data, TensorDType dtype, ReadOnlySpan<long> shape)
    {
        long numel = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension {d} in shape", nameof(shape));
            numel = checked(numel * d);
        }
        if (numel * TensorDTypes.SizeOf(dtype) != data.Length)
            throw new ArgumentException($"shape [{string.Join(", ", shape.ToArray())}] of {dtype} needs {numel * TensorDTypes.SizeOf(dtype)} bytes, got {data.Length}", nameof(data));
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("torch.save output is written little-endian only");

        var zip = new StoredZipWriter(Alignment);
        zip.Add(Archive + "data.pkl", TensorPickle(dtype, shape, numel));
        zip.Add(Archive + "byteorder", "little"u8);
        zip.Add(Archive + "data/0", data);
        zip.Add(Archive + "version", "3\n"u8);
        zip.Add(Archive + ".data/serialization_id", Encoding.ASCII.GetBytes(SerializationId(data)));
        return zip.Finish();
    }

    /// <summary>Protocol-2 pickle of <c>torch._utils._rebuild_tensor_v2</c> over storage '0' with contiguous strides.</summary>
    private static byte[] TensorPickle(TensorDType dtype, ReadOnlySpan<long> shape, long numel)
    {
        var p = new PickleBuilder();
        p.Proto(2);
        p.Global("torch._utils", "_rebuild_tensor_v2");
        p.Mark();
        {
            p.Mark();
            p.Unicode("storage");
            p.Global("torch", StorageTypeName(dtype));
            p.Unicode("0");
            p.Unicode("cpu");
            p.Int(numel);
            p.TupleFromMark();
            p.PersistentId();
        }
        p.Int(0);
        p.IntTuple(shape);
        var stride = new long[shape.Length];
        long s = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            stride[i] = s;
            s *= Math.Max(shape[i], 1);
        }
        p.IntTuple(stride);
        p.Bool(false);
        p.Global("collections", "OrderedDict");
        p.EmptyTuple();
        p.Reduce();
        p.TupleFromMark();
        p.Reduce();
        p.Stop();
        return p.ToArray();
    }

    private static string StorageTypeName(TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => "FloatStorage",
        TensorDType.F64 => "DoubleStorage",
        TensorDType.F16 => "HalfStorage",
        TensorDType.BF16 => "BFloat16Storage",
        TensorDType.I64 => "LongStorage",
        TensorDType.I32 => "IntStorage",
        TensorDType.I16 => "ShortStorage",
        TensorDType.I8 => "CharStorage",
        TensorDType.U8 => "ByteStorage",
        TensorDType.Bool => "BoolStorage",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };

    /// <summary>
    /// PyTorch writes 40 decimal digits (a random 64-bit value and the records' combined CRC, 20 digits each); we
    /// derive both halves from the data so the output stays deterministic.
    /// </summary>
    private static string SerializationId(ReadOnlySpan<byte> data)
    {
        ulong hash = 14695981039346656037UL; // FNV-1a
        foreach (var b in data)
            hash = (hash ^ b) * 1099511628211UL;
        return hash.ToString("D20") + Crc32.Compute(data).ToString("D20");
    }
}

/// <summary>The few pickle opcodes <see cref="TorchSaveWriter"/> emits (protocol 2: no frames, no short unicode).</summary>
internal sealed class PickleBuilder
{
    private readonly MemoryStream _ms = new();

    public void Proto(byte version) { _ms.WriteByte(0x80); _ms.WriteByte(version); }

    public void Global(string module, string name)
    {
        _ms.WriteByte((byte)'c');
        _ms.Write(Encoding.ASCII.GetBytes(module + "\n" + name + "\n"));
    }

    public void Mark() => _ms.WriteByte((byte)'(');

    public void TupleFromMark() => _ms.WriteByte((byte)'t');

    public void EmptyTuple() => _ms.WriteByte((byte)')');

    public void PersistentId() => _ms.WriteByte((byte)'Q');

    public void Reduce() => _ms.WriteByte((byte)'R');

    public void Stop() => _ms.WriteByte((byte)'.');

    public void Bool(bool v) => _ms.WriteByte(v ? (byte)0x88 : (byte)0x89);

    public void Unicode(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        _ms.WriteByte((byte)'X');
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)bytes.Length);
        _ms.Write(len);
        _ms.Write(bytes);
    }

    public void Int(long v)
    {
        Span<byte> buf = stackalloc byte[8];
        if (v is >= 0 and <= byte.MaxValue)
        {
            _ms.WriteByte((byte)'K');
            _ms.WriteByte((byte)v);
        }
        else if (v is >= 0 and <= ushort.MaxValue)
        {
            _ms.WriteByte((byte)'M');
            BinaryPrimitives.WriteUInt16LittleEndian(buf, (ushort)v);
            _ms.Write(buf[..2]);
        }
        else if (v is >= int.MinValue and <= int.MaxValue)
        {
            _ms.WriteByte((byte)'J');
            BinaryPrimitives.WriteInt32LittleEndian(buf, (int)v);
            _ms.Write(buf[..4]);
        }
        else
        {
            // LONG1 with 8 bytes, two's complement little-endian; always long enough for a 64-bit value.
            _ms.WriteByte(0x8a);
            _ms.WriteByte(8);
            BinaryPrimitives.WriteInt64LittleEndian(buf, v);
            _ms.Write(buf);
        }
    }

    public void IntTuple(ReadOnlySpan<long> values)
    {
        switch (values.Length)
        {
            case 0: EmptyTuple(); return;
            case 1: Int(values[0]); _ms.WriteByte(0x85); return;
            case 2: Int(values[0]); Int(values[1]); _ms.WriteByte(0x86); return;
            case 3: Int(values[0]); Int(values[1]); Int(values[2]); _ms.WriteByte(0x87); return;
            default:
                Mark();
                foreach (var v in values) Int(v);
                TupleFromMark();
                return;
        }
    }

    public byte[] ToArray() => _ms.ToArray();
}
