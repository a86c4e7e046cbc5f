using System.Buffers.Binary;
using GigaPath.IO;
using GigaPath.Models.Slide;
using NUnit.Framework;

namespace GigaPath.Tests.IO;

/// <summary>
/// Issue 25, without Python: the structure checks made before PureHDF opens a dataset, on files our writer makes and
/// then corrupts. PureHDF follows a chunk B-tree's child pointers recursively, trusting the parent's level: a node
/// listed as its own child overflowed the stack (pca exited 134). Link, layout and filter cases built by h5py are in
/// <see cref="HostileH5InteropTests"/>.
/// </summary>
public class Hdf5StructureTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("h5-structure");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    /// <summary>A 5 × 4 feature file from our writer (one chunk per dataset) and the offset of the features' chunk B-tree node.</summary>
    private (string Path, byte[] Bytes, int Node) Written()
    {
        var path = Path.Combine(_dir, "slide.h5");
        var features = Enumerable.Range(0, 20).Select(i => (float)i).ToArray();
        var coords = Enumerable.Range(0, 10).Select(i => 256.0 * i).ToArray();
        TileFeatureFile.WriteH5(path, new TileFeatures(features, 5, 4, coords, new Dictionary<string, object>()));
        var bytes = File.ReadAllBytes(path);
        int node = bytes.AsSpan().IndexOf("TREE"u8); // the datasets are written in order: features' node comes first
        Assert.That(node, Is.GreaterThan(0));
        Assert.That(bytes[node + 4], Is.EqualTo(1), "a chunk B-tree node");
        return (path, bytes, node);
    }

    [Test]
    public void OurFileIsReadThroughHardLinks()
    {
        var (path, _, _) = Written();
        using var structure = Hdf5Structure.Open(path);
        var facts = structure.Dataset("features")!;
        Assert.That(facts.HardPath, Is.EqualTo("/features"));
        Assert.That(facts.Dims, Is.EqualTo(new long[] { 5, 4 }));
        Assert.That((facts.TypeClass, facts.TypeSize, facts.BigEndian), Is.EqualTo((1, 4, false)));
        Assert.That(structure.Dataset("coords")!.TypeClass, Is.EqualTo(0), "int64 coords");
        Assert.That(structure.Dataset("nothing"), Is.Null);
        Assert.That(structure.RootNames(), Is.EqualTo(new[] { "features", "coords" }));
    }

    [Test]
    public void AChunkNodeThatIsItsOwnChildIsRefused()
    {
        var (path, bytes, node) = Written();
        bytes[node + 5] = 1; // level 1: its child pointers are nodes
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(node + 24 + 32), (ulong)node); // child 0 → itself
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<Hdf5StructureException>(() => TileFeatureFile.Read(path));
        Assert.That(e!.Message, Is.EqualTo($"{path}: dataset 'features' has a chunk index (B-tree) whose node at address {node:N0} is reached twice: a loop"));
    }

    [Test]
    public void AChunkNodeUnderTheWrongLevelIsRefused()
    {
        // A level-2 node whose child is a leaf (the coords' chunk node, level 0): PureHDF would read that leaf as a level-1 node.
        var (path, bytes, node) = Written();
        int other = bytes.AsSpan(node + 4).IndexOf("TREE"u8) + node + 4;
        bytes[node + 5] = 2;
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(node + 24 + 32), (ulong)other);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<Hdf5StructureException>(() => TileFeatureFile.Read(path));
        Assert.That(e!.Message, Does.Contain($"dataset 'features' has a chunk index whose node at address {other:N0} is at level 0 under a node at level 2"));
    }

    [TestCase(100)]
    [TestCase(400)]
    public void ATruncatedFileIsNotReadable(int length)
    {
        var (path, bytes, _) = Written();
        File.WriteAllBytes(path, bytes[..length]);
        var e = Assert.Throws<GigaPathException>(() => TileFeatureFile.Read(path));
        Assert.That(e!.Message, Does.StartWith(path + ": not a readable HDF5 file (").And.Not.Contain("\n"));
    }
}
