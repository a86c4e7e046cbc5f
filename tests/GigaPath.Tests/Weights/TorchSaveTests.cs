using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using GigaPath.Weights;
using NUnit.Framework;

namespace GigaPath.Tests.Weights;

public class TorchSaveTests
{
    private static float[] RandomFloats(int n, int seed)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(rng.NextDouble() * 4 - 2);
        // Values whose bits must survive exactly.
        v[0] = float.Epsilon;
        if (n > 1) v[1] = -0.0f;
        if (n > 2) v[2] = float.MaxValue;
        return v;
    }

    [TestCase(new long[] { 1536 })]
    [TestCase(new long[] { 48 })]
    [TestCase(new long[] { 2, 3 })]
    [TestCase(new long[] { 2, 3, 4, 5 })]
    [TestCase(new long[] { 70000 })]
    public void RoundTripsThroughOurReaderBitwise(long[] shape)
    {
        int n = (int)shape.Aggregate(1L, (a, b) => a * b);
        var values = RandomFloats(n, n);
        var bytes = TorchSaveWriter.Serialize(values, shape);
        var (read, readShape) = TorchSaveReader.ReadFloats(bytes);
        Assert.That(readShape, Is.EqualTo(shape));
        Assert.That(MemoryMarshal.AsBytes(read.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(values.AsSpan())), Is.True);
    }

    [Test]
    public void HasTheRecordsAndLayoutPyTorchWrites()
    {
        var values = RandomFloats(1536, 7);
        var bytes = TorchSaveWriter.Serialize(values, new long[] { 1536 });
        using var zip = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read);
        Assert.That(zip.Entries.Select(e => e.FullName), Is.EqualTo(new[]
        {
            "archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/version", "archive/.data/serialization_id",
        }));
        Assert.That(zip.Entries.All(e => e.CompressedLength == e.Length), Is.True, "entries are stored, not deflated");
        Assert.That(ReadEntry(zip, "archive/byteorder"), Is.EqualTo("little"));
        Assert.That(ReadEntry(zip, "archive/version"), Is.EqualTo("3\n"));
        Assert.That(ReadEntry(zip, "archive/.data/serialization_id"), Does.Match("^[0-9]{40}$"));

        // Every record's data starts on a 64-byte boundary (PyTorch's kFieldAlignment), so mmap-loading works too.
        int pos = 0;
        var dataOffsets = new Dictionary<string, int>();
        while (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos)) == 0x04034b50)
        {
            int size = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + 18));
            int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(pos + 26));
            int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(pos + 28));
            var name = Encoding.UTF8.GetString(bytes, pos + 30, nameLen);
            int dataStart = pos + 30 + nameLen + extraLen;
            Assert.That(dataStart % 64, Is.Zero, name);
            Assert.That(Encoding.ASCII.GetString(bytes, pos + 30 + nameLen, 2), Is.EqualTo("FB"), name);
            dataOffsets[name] = dataStart;
            pos = dataStart + size;
        }
        Assert.That(dataOffsets, Has.Count.EqualTo(5));
        var raw = bytes.AsSpan(dataOffsets["archive/data/0"], 1536 * 4);
        Assert.That(raw.SequenceEqual(MemoryMarshal.AsBytes(values.AsSpan())), Is.True, "storage holds the float32 values little-endian");
    }

    [Test]
    public void PickleIsTheProtocol2RebuildTensorCall()
    {
        var bytes = TorchSaveWriter.Serialize(new float[] { 1, 2, 3 }, new long[] { 3 });
        using var zip = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read);
        using var ms = new MemoryStream();
        zip.GetEntry("archive/data.pkl")!.Open().CopyTo(ms);
        var pkl = ms.ToArray();
        Assert.That(pkl[0..2], Is.EqualTo(new byte[] { 0x80, 2 }), "protocol 2");
        var text = Encoding.Latin1.GetString(pkl);
        Assert.That(text, Does.Contain("ctorch._utils\n_rebuild_tensor_v2\n"));
        Assert.That(text, Does.Contain("ctorch\nFloatStorage\n"));
        Assert.That(text, Does.Contain("ccollections\nOrderedDict\n"));
        var root = new SafeUnpickler("test").Load(pkl);
        Assert.That(root, Is.EqualTo(new PickledTensor("0", TensorDType.F32, 0, new long[] { 3 }, new long[] { 1 })).Using<PickledTensor>(
            (a, b) => a.StorageKey == b.StorageKey && a.DType == b.DType && a.Offset == b.Offset && a.Shape.SequenceEqual(b.Shape) && a.Stride.SequenceEqual(b.Stride)));
    }

    [Test]
    public void IsDeterministic()
    {
        var values = RandomFloats(100, 3);
        Assert.That(TorchSaveWriter.Serialize(values, new long[] { 100 }), Is.EqualTo(TorchSaveWriter.Serialize(values, new long[] { 100 })));
    }

    [Test]
    public void RejectsAShapeThatDoesNotMatchTheData()
    {
        Assert.Throws<ArgumentException>(() => TorchSaveWriter.Serialize(new float[5], new long[] { 6 }));
    }

    [Test]
    public void ReaderRejectsNonZipAndStateDicts()
    {
        var e = Assert.Throws<WeightFormatException>(() => TorchSaveReader.ReadTensor(Encoding.ASCII.GetBytes("not a zip"), "row 3"));
        Assert.That(e!.Message, Does.StartWith("row 3:").And.Contain("not a PyTorch zip"));
        var dict = File.ReadAllBytes(FixturePaths.Get("slide_encoder_tiny", "model.pth"));
        e = Assert.Throws<WeightFormatException>(() => TorchSaveReader.ReadTensor(dict, "model.pth"));
        Assert.That(e!.Message, Does.Contain("not a single tensor"));
    }

    [Test, Category(PythonTorch.Category)]
    public void PyTorchLoadsItWithWeightsOnly()
    {
        PythonTorch.RequireOrIgnore("torch");
        var dir = FixturePaths.TempDir();
        try
        {
            var v1 = RandomFloats(1536, 11);
            var v2 = RandomFloats(6, 12);
            var f1 = Path.Combine(dir, "a.pt");
            var f2 = Path.Combine(dir, "b.pt");
            File.WriteAllBytes(f1, TorchSaveWriter.Serialize(v1, new long[] { 1536 }));
            File.WriteAllBytes(f2, TorchSaveWriter.Serialize(v2, new long[] { 2, 3 }));
            var lines = PythonTorch.LoadWithWeightsOnly(f1, f2);
            TestContext.Out.WriteLine($"interop: torch.load(weights_only=True) of TorchSaveWriter files: {string.Join("; ", lines)}");
            Assert.That(lines, Is.EqualTo(new[] { "torch.float32 [1536]", "torch.float32 [2, 3]" }));
            Assert.That(File.ReadAllBytes(f1 + ".raw"), Is.EqualTo(MemoryMarshal.AsBytes(v1.AsSpan()).ToArray()));
            Assert.That(File.ReadAllBytes(f2 + ".raw"), Is.EqualTo(MemoryMarshal.AsBytes(v2.AsSpan()).ToArray()));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static string ReadEntry(ZipArchive zip, string name)
    {
        using var r = new StreamReader(zip.GetEntry(name)!.Open());
        return r.ReadToEnd();
    }
}
