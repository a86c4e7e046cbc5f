using System.Buffers.Binary;
using System.Text;
using GigaPath.Tests.Cli;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Weights;

/// <summary>
/// Issue 14, case 6 (checkpoints): crafted torch.save files whose tensor records declare impossible shapes, strides or
/// sizes, or whose zip records are corrupt, end in a clear error and exit 2, never a stack trace; and sizes are 64-bit
/// throughout, so a single tensor of 2 GiB or more is read.
/// </summary>
public class HostileCheckpointTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("hostile-checkpoint");

    [TearDown]
    public void TearDown()
    {
        TensorChunks.ChunkBytes = TensorChunks.DefaultChunkBytes;
        Directory.Delete(_dir, true);
    }

    /// <summary>
    /// The pickle of <c>{"w": _rebuild_tensor_v2(storage '0', offset, shape, stride)}</c>, as torch.save writes a state dict
    /// (a plain dict here).
    /// </summary>
    internal static byte[] StateDictPickle(string storageType, long storageElements, long offset, long[] shape, long[] stride)
    {
        var p = new PickleBuilder();
        p.Unicode("w");
        PushTensor(p, storageType, storageElements, offset, shape, stride);
        return [0x80, 0x02, (byte)'}', .. p.ToArray(), (byte)'s', (byte)'.'];
    }

    /// <summary>The pickle of a bare tensor, as <c>torch.save(tensor)</c> writes it (CLAM's <c>.pt</c> features).</summary>
    internal static byte[] TensorPickle(string storageType, long storageElements, long offset, long[] shape, long[] stride)
    {
        var p = new PickleBuilder();
        PushTensor(p, storageType, storageElements, offset, shape, stride);
        return [0x80, 0x02, .. p.ToArray(), (byte)'.'];
    }

    /// <summary>Pushes <c>_rebuild_tensor_v2(storage '0', offset, shape, stride, False, OrderedDict())</c>.</summary>
    private static void PushTensor(PickleBuilder p, string storageType, long storageElements, long offset, long[] shape, long[] stride)
    {
        p.Global("torch._utils", "_rebuild_tensor_v2");
        p.Mark();
        p.Mark();
        p.Unicode("storage");
        p.Global("torch", storageType);
        p.Unicode("0");
        p.Unicode("cpu");
        p.Int(storageElements);
        p.TupleFromMark();
        p.PersistentId();
        p.Int(offset);
        p.IntTuple(shape);
        p.IntTuple(stride);
        p.Bool(false);
        p.Global("collections", "OrderedDict");
        p.EmptyTuple();
        p.Reduce();
        p.TupleFromMark();
        p.Reduce();
    }

    private string Checkpoint(string name, string storageType, byte[] storage, long[] shape, long[] stride, long offset = 0)
    {
        var zip = new StoredZipWriter(64);
        zip.Add("archive/data.pkl", StateDictPickle(storageType, storage.Length, offset, shape, stride));
        zip.Add("archive/data/0", storage);
        zip.Add("archive/version", "3\n"u8);
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, zip.Finish());
        return path;
    }

    private CliInvocation Convert(string checkpoint)
    {
        var run = CliInvocation.Run("convert-weights", checkpoint, Path.Combine(_dir, "out.safetensors"));
        TestContext.Out.WriteLine(run.Error.Trim());
        return run;
    }

    private void AssertRefused(CliInvocation run, string checkpoint, params string[] fragments)
    {
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.StartWith("error: " + checkpoint));
        Assert.That(run.Error, Does.Not.Contain("   at "), "no stack trace");
        foreach (var f in fragments) Assert.That(run.Error, Does.Contain(f));
        Assert.That(File.Exists(Path.Combine(_dir, "out.safetensors")), Is.False);
    }

    private static readonly byte[] SixteenFloats = new byte[64];

    [Test]
    public void ANegativeDimensionIsRefused()
    {
        var path = Checkpoint("neg-shape.pth", "FloatStorage", SixteenFloats, [-1, 4], [4, 1]);
        AssertRefused(Convert(path), path, "shape [-1, 4]", "negative dimension");
    }

    [Test]
    public void ANegativeStrideIsRefused()
    {
        var path = Checkpoint("neg-stride.pth", "FloatStorage", SixteenFloats, [4, 4], [-4, 1]);
        AssertRefused(Convert(path), path, "stride [-4, 1]", "negative stride");
    }

    [Test]
    public void AStrideOf2To62IsRefused()
    {
        long huge = 1L << 62;
        var floats = Checkpoint("stride-2-62.pth", "FloatStorage", SixteenFloats, [2, 2], [huge, 1]);
        AssertRefused(Convert(floats), floats, $"stride [{huge}, 1]", "does not fit in 64 bits");
        // In bytes the same view fits 64 bits: then it is the storage it would reach that is refused, before any allocation.
        var bytes = Checkpoint("stride-2-62-u8.pth", "ByteStorage", new byte[16], [2, 2], [huge, 1]);
        AssertRefused(Convert(bytes), bytes, "tensor 'w'", $"needs {huge + 2} bytes of storage 'archive/data/0', which has 16");
    }

    [Test]
    public void AShapeOf2To62SquaredIsRefused()
    {
        long huge = 1L << 62;
        var path = Checkpoint("shape-2-62-squared.pth", "FloatStorage", SixteenFloats, [huge, huge], [huge, 1]);
        AssertRefused(Convert(path), path, $"shape [{huge}, {huge}]", "does not fit in 64 bits");
    }

    [Test]
    public void ACorruptLocalHeaderIsReportedAsACorruptCheckpoint()
    {
        var path = Checkpoint("corrupt-header.pth", "FloatStorage", SixteenFloats, [4, 4], [4, 1]);
        var bytes = File.ReadAllBytes(path);
        // The central directory still lists the record; its local header (30 bytes before its name) is overwritten.
        int name = IndexOf(bytes, "archive/data/0"u8);
        Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(name - 30)), Is.EqualTo(0x04034b50u), "local header signature");
        bytes.AsSpan(name - 30, 4).Fill(0xEE);
        File.WriteAllBytes(path, bytes);
        AssertRefused(Convert(path), path, "storage 'archive/data/0' of tensor 'w' is corrupt");
    }

    [Test]
    public void ValidCraftedCheckpointConverts()
    {
        // The control: the same construction with sound numbers converts, so the refusals above are about the numbers.
        var values = Enumerable.Range(0, 16).Select(i => (float)i).ToArray();
        var path = Checkpoint("sound.pth", "FloatStorage", System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), [2, 4], [8, 2], 1);
        var run = Convert(path);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        using var converted = SafeTensorsFile.Open(Path.Combine(_dir, "out.safetensors"));
        Assert.That(converted.ReadFloats("w").Data, Is.EqualTo(new float[] { 1, 3, 5, 7, 9, 11, 13, 15 }), "strided view gathered");
    }

    [Test]
    public void TensorsAreCopiedInPiecesWithTheSameBytes()
    {
        // The >= 2 GiB path (several pieces per tensor) on small tensors: pieces of 100 bytes, not a multiple of the element size.
        var values = Enumerable.Range(0, 1000).Select(i => (float)Math.Sin(i)).ToArray();
        var path = Checkpoint("pieces.pth", "FloatStorage", System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), [10, 100], [100, 1]);
        TensorChunks.ChunkBytes = 100;
        using (var checkpoint = PyTorchCheckpoint.Open(path))
        using (var loaded = checkpoint.Load("w"))
        using (var destination = zeros(10, 100))
        {
            Assert.That(loaded.data<float>().ToArray(), Is.EqualTo(values));
            checkpoint.CopyInto("w", destination);
            Assert.That(destination.data<float>().ToArray(), Is.EqualTo(values));
        }
        Assert.That(Convert(path).ExitCode, Is.EqualTo(0));
        using var converted = SafeTensorsFile.Open(Path.Combine(_dir, "out.safetensors"));
        using var back = converted.Load("w");
        Assert.That(back.data<float>().ToArray(), Is.EqualTo(values));
    }

    [Test]
    public void ATensorOf2GiBOrMoreIsDescribedWith64BitSizes()
    {
        // A sparse file: 2 GiB + 64 bytes of uint8 storage cost no disk and no memory until read.
        long length = (1L << 31) + 64;
        var path = SparseCheckpoint(Path.Combine(_dir, "big.pth"), length, new Dictionary<long, byte>());
        using var checkpoint = PyTorchCheckpoint.Open(path);
        var info = checkpoint.GetInfo("w");
        Assert.That(info.Shape, Is.EqualTo(new[] { length }));
        Assert.That(info.ByteLength, Is.EqualTo(length), "more than int.MaxValue, exactly");
    }

    [Test, Category("Slow")]
    public void ATensorOf2GiBOrMoreConvertsAndLoads()
    {
        // Reads and writes 2 GiB (peak memory about twice the tensor: it, and the mapped output file), which is why it is
        // not in the default run.
        long length = (1L << 31) + 64;
        var marks = new Dictionary<long, byte> { [0] = 7, [int.MaxValue - 1] = 8, [int.MaxValue] = 9, [length - 1] = 10 };
        var path = SparseCheckpoint(Path.Combine(_dir, "big.pth"), length, marks);
        var run = Convert(path);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        using var converted = SafeTensorsFile.Open(Path.Combine(_dir, "out.safetensors"));
        Assert.That(converted.GetInfo("w").ByteLength, Is.EqualTo(length));
        using var loaded = converted.Load("w");
        foreach (var (at, value) in marks)
            Assert.That(loaded[at].item<byte>(), Is.EqualTo(value), $"byte {at}");
        // Summed in pieces: a whole-tensor sum of uint8 widens it to int64 first (16 GiB).
        long total = 0;
        for (long start = 0; start < length; start += 1L << 24)
        {
            using var scope = NewDisposeScope();
            total += loaded.narrow(0, start, Math.Min(1L << 24, length - start)).sum(ScalarType.Int64).item<long>();
        }
        Assert.That(total, Is.EqualTo(marks.Values.Sum(v => (long)v)), "zeros elsewhere");
    }

    /// <summary>
    /// A torch.save zip with one uint8 tensor 'w' of <paramref name="length"/> bytes, zero but for <paramref name="marks"/>,
    /// written sparse: the zeros are a hole in the file.
    /// </summary>
    private static string SparseCheckpoint(string path, long length, IReadOnlyDictionary<long, byte> marks)
    {
        var pickle = StateDictPickle("ByteStorage", length, 0, [length], [1]);
        var entries = new List<(byte[] Name, uint Crc, long Size, long Offset)>();
        using (var fs = new FileStream(path, FileMode.Create, FileAccess.ReadWrite))
        {
            void Local(string name, long size, uint crc)
            {
                var n = Encoding.ASCII.GetBytes(name);
                entries.Add((n, crc, size, fs.Position));
                var h = new byte[30];
                BinaryPrimitives.WriteUInt32LittleEndian(h, 0x04034b50);
                BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(4), 20);
                BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(14), crc);
                BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(18), (uint)size);
                BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(22), (uint)size);
                BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(26), (ushort)n.Length);
                fs.Write(h);
                fs.Write(n);
            }
            Local("archive/data.pkl", pickle.Length, Crc32.Compute(pickle));
            fs.Write(pickle);
            Local("archive/data/0", length, ZeroCrc(length, marks));
            long data = fs.Position;
            foreach (var (at, value) in marks)
            {
                fs.Position = data + at;
                fs.WriteByte(value);
            }
            fs.SetLength(data + length);
            fs.Position = data + length;
            long central = fs.Position;
            foreach (var (name, crc, size, offset) in entries)
            {
                var c = new byte[46];
                BinaryPrimitives.WriteUInt32LittleEndian(c, 0x02014b50);
                BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(4), 20);
                BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(6), 20);
                BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(16), crc);
                BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(20), (uint)size);
                BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(24), (uint)size);
                BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(28), (ushort)name.Length);
                BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(42), (uint)offset);
                fs.Write(c);
                fs.Write(name);
            }
            var e = new byte[22];
            BinaryPrimitives.WriteUInt32LittleEndian(e, 0x06054b50);
            BinaryPrimitives.WriteUInt16LittleEndian(e.AsSpan(8), (ushort)entries.Count);
            BinaryPrimitives.WriteUInt16LittleEndian(e.AsSpan(10), (ushort)entries.Count);
            BinaryPrimitives.WriteUInt32LittleEndian(e.AsSpan(12), (uint)(fs.Position - central));
            BinaryPrimitives.WriteUInt32LittleEndian(e.AsSpan(16), (uint)central);
            fs.Write(e);
        }
        return path;
    }

    /// <summary>CRC-32 of <paramref name="length"/> zero bytes but for <paramref name="marks"/> (computed only when marks are given).</summary>
    private static uint ZeroCrc(long length, IReadOnlyDictionary<long, byte> marks)
    {
        if (marks.Count == 0) return 0; // never read in full: the cheap test only opens the archive
        var table = Enumerable.Range(0, 256).Select(i =>
        {
            uint c = (uint)i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            return c;
        }).ToArray();
        uint crc = 0xFFFFFFFFu;
        long at = 0;
        foreach (var (mark, value) in marks.OrderBy(kv => kv.Key).Append(new KeyValuePair<long, byte>(length, 0)))
        {
            for (; at < mark; at++) crc = table[crc & 0xFF] ^ (crc >> 8);
            if (mark < length) crc = table[(crc ^ value) & 0xFF] ^ (crc >> 8);
            at = mark + 1;
        }
        return crc ^ 0xFFFFFFFFu;
    }

    private static int IndexOf(byte[] haystack, ReadOnlySpan<byte> needle) => haystack.AsSpan().IndexOf(needle);
}
