using System.IO.Compression;
using GigaPath.IO;
using GigaPath.Tests.Cli;
using GigaPath.Tests.Weights;
using GigaPath.Weights;
using NUnit.Framework;

namespace GigaPath.Tests.Reliability;

/// <summary>
/// Issue 25, classes 5 and 8: torch.save zips of a few hundred bytes (or a few KB of deflate) that declared gigabytes
/// — a tensor with strides [0, 0] over one element (a 619-byte <c>.pt</c> made <c>predict</c> use 15.5 GiB and exit 0),
/// a deflated zero storage (3.1 MB → 3.2 GiB), a valid pickle followed by deflated zeros (4.2 GiB, then a stack
/// trace) — are refused from their declared sizes before anything is materialised. Each is built here; the refusals
/// name the file, the tensor or record, and the limit.
/// </summary>
public class ExpandingTorchFileTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("expanding-pt");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    /// <summary>A torch.save zip: <c>archive/data.pkl</c>, <c>archive/data/0</c> (each deflated when asked), <c>archive/version</c>.</summary>
    private string Zip(string name, byte[] pickle, byte[] storage, bool deflatePickle = false, bool deflateStorage = false, long pickleZeros = 0)
    {
        var path = Path.Combine(_dir, name);
        using (var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create))
        {
            using (var s = zip.CreateEntry("archive/data.pkl", deflatePickle ? CompressionLevel.Optimal : CompressionLevel.NoCompression).Open())
            {
                s.Write(pickle);
                var zeros = new byte[1 << 20];
                for (long left = pickleZeros; left > 0; left -= zeros.Length) s.Write(zeros, 0, (int)Math.Min(left, zeros.Length));
            }
            using (var s = zip.CreateEntry("archive/data/0", deflateStorage ? CompressionLevel.Optimal : CompressionLevel.NoCompression).Open())
                s.Write(storage);
            using (var s = zip.CreateEntry("archive/version", CompressionLevel.NoCompression).Open())
                s.Write("3\n"u8);
        }
        return path;
    }

    private string BroadcastFeatures(long rows, long dim) =>
        Zip("broadcast.pt", HostileCheckpointTests.TensorPickle("FloatStorage", 1, 0, [rows, dim], [0, 0]), new byte[4]);

    [Test]
    public void ABroadcastPtFeatureFileIsHeldToMaxTilesAndToTheExpansionLimit()
    {
        var path = BroadcastFeatures(2_500_000, 192);
        Assert.That(new FileInfo(path).Length, Is.LessThan(1024), "the attack file is tiny");
        BudgetExceededException? e = null;
        long allocated = HostileInputs.AllocatedBy(() => e = Assert.Throws<BudgetExceededException>(() => TileFeatureFile.Read(path)));
        Assert.That(e!.Message, Does.StartWith(path + ": 'tensor' has shape [2500000, 192]: 2,500,000 tiles, above the limit of 1,000,000")
            .And.Contain("TileFeatureBudget.MaxTiles"));
        Assert.That(allocated, Is.LessThan(16L << 20), "refused from the pickle, nothing materialised");

        // Under a raised tile limit the strides are what is refused: 1.92 GB from 4 bytes of storage.
        allocated = HostileInputs.AllocatedBy(() => e = Assert.Throws<BudgetExceededException>(() => TileFeatureFile.Read(path, new TileFeatureBudget(3_000_000))));
        Assert.That(e!.Message, Does.StartWith(path + ": tensor 'tensor' F32 shape [2500000, 192] stride [0, 0]")
            .And.Contain("materialises 1,920,000,000 bytes from 4 bytes of storage (broadcast or overlapping strides)").And.Contain("64 MiB"));
        Assert.That(allocated, Is.LessThan(16L << 20));

        // The model's width is checked before the data too.
        var dim = Assert.Throws<GigaPathException>(() => TileFeatureFile.Read(path, new TileFeatureBudget(3_000_000, ExpectedDim: 1536)));
        Assert.That(dim!.Message, Does.Contain("embeddings of 192 values; this model takes 1536"));
    }

    [Test]
    public void SmallBroadcastsAndOverlapsWithinTheLimitStillRead()
    {
        // 8 × 4 floats from one: 128 bytes, far under the limit; a real torch.save of x.expand(8, 4) looks like this.
        var path = Zip("small.pt", HostileCheckpointTests.TensorPickle("FloatStorage", 1, 0, [8, 4], [0, 0]), BitConverter.GetBytes(2.5f));
        var tiles = TileFeatureFile.Read(path);
        Assert.That(tiles.Count, Is.EqualTo(8));
        Assert.That(tiles.Features, Is.All.EqualTo(2.5f));
    }

    [Test]
    public void EmbedSlideRefusesTheBroadcastPtUnderARaisedTileLimitWithExitCode2()
    {
        var path = BroadcastFeatures(2_500_000, 32);
        var run = CliInvocation.Run("embed-slide", "--model", FixturePaths.Get("slide_encoder_tiny"), "--tiles", path,
            "--out", Path.Combine(_dir, "out.safetensors"), "--patch-size-level0", "256", "--max-tiles", "3000000");
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.StartWith("error: " + path).And.Contain("materialises 320,000,000 bytes from 4 bytes").And.Not.Contain("   at "));
        Assert.That(File.Exists(Path.Combine(_dir, "out.safetensors")), Is.False);
    }

    [TestCase(new long[] { 30000, 30000 }, new long[] { 0, 0 }, 1L, "materialises 3,600,000,000 bytes from 4 bytes of storage")]
    [TestCase(new long[] { 5000, 5000 }, new long[] { 1, 1 }, 9999L, "materialises 100,000,000 bytes from 39,996 bytes of storage")]
    public void ConvertWeightsRefusesABroadcastOrOverlappingTensorBeforeMaterialisingIt(long[] shape, long[] stride, long storageElements, string fragment)
    {
        var path = Zip("w.pth", HostileCheckpointTests.StateDictPickle("FloatStorage", storageElements, 0, shape, stride), new byte[storageElements * 4]);
        BudgetExceededException? e = null;
        long allocated = HostileInputs.AllocatedBy(() => e = Assert.Throws<BudgetExceededException>(() => PyTorchCheckpoint.Open(path).Dispose()));
        Assert.That(e!.Message, Does.StartWith(path + ": tensor 'w' F32").And.Contain(fragment));
        Assert.That(allocated, Is.LessThan(16L << 20), "refused when the checkpoint is opened");

        var output = Path.Combine(_dir, "out.safetensors");
        var run = CliInvocation.Run("convert-weights", path, output);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.StartWith("error: " + path).And.Contain(fragment).And.Not.Contain("   at "));
        Assert.That(File.Exists(output), Is.False, "nothing written (the 3.6 GB output used to be written, exit 0)");
    }

    [Test]
    public void ADeflatedZeroStorageIsRefusedByItsCompressionRatio()
    {
        // 64 MiB of zeros deflate to about 64 KB; the real attack was 3.2 GiB in 3.1 MB. torch.save never compresses.
        const long bytes = 64L << 20;
        var path = Zip("zeros.pth", HostileCheckpointTests.StateDictPickle("FloatStorage", bytes / 4, 0, [bytes / 4], [1]), new byte[bytes], deflateStorage: true);
        Assert.That(new FileInfo(path).Length, Is.LessThan(1L << 20));
        var e = Assert.Throws<BudgetExceededException>(() => PyTorchCheckpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.StartWith(path + ": record 'archive/data/0' (storage of tensor 'w') declares 67,108,864 bytes compressed into")
            .And.Contain("compressed records may expand at most 100:1 beyond 16 MiB"));
        var run = CliInvocation.Run("convert-weights", path, Path.Combine(_dir, "out.safetensors"));
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());

        // A compressed record of ordinary values (ratio near 1) still converts.
        var values = Enumerable.Range(0, 4096).Select(i => MathF.Sin(i)).ToArray();
        var sound = Zip("sound.pth", HostileCheckpointTests.StateDictPickle("FloatStorage", 4096, 0, [64, 64], [64, 1]),
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), deflatePickle: true, deflateStorage: true);
        using var checkpoint = PyTorchCheckpoint.Open(sound);
        using var w = checkpoint.Load("w");
        Assert.That(w.data<float>().ToArray(), Is.EqualTo(values));
    }

    [Test]
    public void APickleFollowedByDeflatedZerosIsRefusedBeforeItIsRead()
    {
        var pickle = HostileCheckpointTests.StateDictPickle("FloatStorage", 1, 0, [1], [1]);
        var path = Zip("pickle-bomb.pth", pickle, new byte[4], deflatePickle: true, pickleZeros: 64L << 20);
        BudgetExceededException? e = null;
        long allocated = HostileInputs.AllocatedBy(() => e = Assert.Throws<BudgetExceededException>(() => PyTorchCheckpoint.Open(path).Dispose()));
        Assert.That(e!.Message, Does.StartWith(path + ": record 'archive/data.pkl' (the pickle) declares").And.Contain("100:1"));
        Assert.That(allocated, Is.LessThan(16L << 20), "the pickle record is not read");
        var run = CliInvocation.Run("convert-weights", path, Path.Combine(_dir, "out.safetensors"));
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Not.Contain("   at ").And.Not.Contain("Stream was too long"));
    }

    [Test]
    public void APickleRecordOverTheLimitIsRefusedWhateverItsRatio()
    {
        // Stored (ratio 1:1): 64 MiB + 1 of pickle and padding, over TorchZipArchive.MaxPickleBytes.
        var pickle = HostileCheckpointTests.StateDictPickle("FloatStorage", 1, 0, [1], [1]);
        var path = Zip("big-pickle.pth", pickle, new byte[4], pickleZeros: TorchZipArchive.MaxPickleBytes - pickle.Length + 1);
        var e = Assert.Throws<BudgetExceededException>(() => PyTorchCheckpoint.Open(path).Dispose());
        Assert.That(e!.Message, Does.StartWith(path + ": record 'archive/data.pkl' declares a pickle of 67,108,865 bytes; at most 67,108,864 are read"));
    }
}
