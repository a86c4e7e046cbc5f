using System.Buffers.Binary;
using GigaPath.Slides;
using GigaPath.Tests.Cli;
using GigaPath.Tests.Pipeline;
using NUnit.Framework;

namespace GigaPath.Tests.Slides;

/// <summary>
/// Issue 14, case 7: an .svs cut short (a failed copy) is reported as a truncated or corrupt slide, not as "a plain
/// image … pass --slide-mpp" followed by "Can not read TIFF directory".
/// </summary>
public class TruncatedSlideTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("truncated-slide");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private string Truncated(string name, double fraction)
    {
        var bytes = File.ReadAllBytes(SlideFixtures.CmuSmallRegion);
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes[..(int)(bytes.Length * fraction)]);
        return path;
    }

    // CMU-1-Small-Region.svs keeps its first directory at 66 % of the file, the others after it: cut anywhere, the
    // chain of directories leads past the end.
    [TestCase(0.5, "directory 0 should start at byte 1275950, past the end of the file (969477 bytes)")]
    [TestCase(0.9, "directory 2 should start at byte")]
    [TestCase(0.999, "directory 3 should start at byte")]
    public void ATruncatedSvsIsReportedAsTruncated(double fraction, string what)
    {
        var path = Truncated("cut.svs", fraction);
        foreach (double? mpp in new double?[] { null, 0.5 })
        {
            var error = Assert.Throws<GigaPathException>(() => SlideOpener.Open(path, mpp).Dispose())!;
            TestContext.Out.WriteLine(error.Message);
            Assert.That(error.Message, Does.StartWith($"{path}: truncated or corrupt slide file: ").And.Contain(what));
            Assert.That(error.Message, Does.Not.Contain("--slide-mpp").And.Not.Contain("plain image"));
        }
    }

    [Test]
    public void ACutSlideWithAnotherExtensionIsTruncatedToo()
    {
        // Named .tif, the same bytes are still a damaged TIFF: its structure says so, whatever the name.
        var path = Truncated("cut.tif", 0.5);
        var error = Assert.Throws<GigaPathException>(() => SlideOpener.Open(path, 0.5).Dispose())!;
        Assert.That(error.Message, Does.Contain("truncated or corrupt slide file"));
    }

    [Test]
    public void AnUnrecognisedSvsNeverAsksForTheResolution()
    {
        // Not a TIFF at all, but named .svs: a whole-slide extension, so no plain-image advice.
        var path = Path.Combine(_dir, "junk.svs");
        File.WriteAllBytes(path, new byte[4096]);
        var error = Assert.Throws<GigaPathException>(() => SlideOpener.Open(path).Dispose())!;
        Assert.That(error.Message, Does.Contain("does not recognise: truncated or corrupt?").And.Not.Contain("--slide-mpp"));
    }

    [Test]
    public void IntactSlidesHaveNoDamage()
    {
        foreach (var slide in new[] { SlideFixtures.CmuSmallRegion, SlideFixtures.SmallSvs, SlideFixtures.BoxesTiff, SlideFixtures.BoxesPng })
            Assert.That(TiffStructure.FindDamage(slide), Is.Null, slide);
    }

    [Test]
    public void ATileOffsetPastTheEndIsFound()
    {
        // Directories intact, but the first tile of directory 0 is said to lie past the end of the file.
        var bytes = File.ReadAllBytes(SlideFixtures.CmuSmallRegion);
        int ifd = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4));
        int entries = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(ifd));
        var tileOffsets = Enumerable.Range(0, entries).Select(e => ifd + 2 + 12 * e)
            .Single(at => BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at)) == 324);
        Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(tileOffsets + 2)), Is.EqualTo(4), "LONG offsets");
        int values = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(tileOffsets + 8));
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(values), (uint)bytes.Length + 100);
        var path = Path.Combine(_dir, "bad-offset.svs");
        File.WriteAllBytes(path, bytes);
        Assert.That(TiffStructure.FindDamage(path), Does.StartWith($"image data of directory 0 (strip or tile 0: bytes {bytes.Length + 100} to"));
    }

    [Test]
    public void RunRecordsTheTruncatedSlide()
    {
        var path = Truncated("s1.svs", 0.9);
        var run = CliInvocation.Run("run", path, "--tile-model", PipelineTestData.TileModelDir, "--slide-model", PipelineTestData.SlideModelDir,
            "--out", Path.Combine(_dir, "out"), "--progress", "lines");
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Out, Does.Contain("FAILED s1").And.Contain("truncated or corrupt slide file"));
        Assert.That(run.Out, Does.Not.Contain("--slide-mpp"));
    }

    /// <summary>
    /// A tiled TIFF declaring <paramref name="side"/>² pixels whose every tile offset points at one deflated 256² tile
    /// (issue 25: the 200000² one is 4.9 MB and took `run` past 9.6 GiB): a classic little-endian TIFF, one directory.
    /// </summary>
    private static byte[] OneTileBomb(int side)
    {
        byte[] tile;
        using (var packed = new MemoryStream())
        {
            using (var z = new System.IO.Compression.ZLibStream(packed, System.IO.Compression.CompressionLevel.SmallestSize, leaveOpen: true))
                z.Write(new byte[256 * 256 * 3]);
            tile = packed.ToArray();
        }
        int across = (side + 255) / 256, tiles = across * across;
        var tags = new List<(ushort Tag, ushort Type, uint Count, uint Value)>
        {
            (256, 4, 1, (uint)side), (257, 4, 1, (uint)side), (258, 3, 3, 0), (259, 3, 1, 8), (262, 3, 1, 2),
            (277, 3, 1, 3), (284, 3, 1, 1), (322, 3, 1, 256), (323, 3, 1, 256), (324, 4, (uint)tiles, 0), (325, 4, (uint)tiles, 0),
        };
        int ifd = 8, afterIfd = ifd + 2 + 12 * tags.Count + 4;
        int bits = afterIfd, offsets = bits + 6, counts = offsets + 4 * tiles, data = counts + 4 * tiles;
        var bytes = new byte[data + tile.Length];
        "II"u8.CopyTo(bytes);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), 42);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), (uint)ifd);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(ifd), (ushort)tags.Count);
        for (int i = 0; i < tags.Count; i++)
        {
            var (tag, type, count, value) = tags[i];
            value = tag switch { 258 => (uint)bits, 324 => (uint)offsets, 325 => (uint)counts, _ => value };
            var e = bytes.AsSpan(ifd + 2 + 12 * i);
            BinaryPrimitives.WriteUInt16LittleEndian(e, tag);
            BinaryPrimitives.WriteUInt16LittleEndian(e[2..], type);
            BinaryPrimitives.WriteUInt32LittleEndian(e[4..], count);
            if (type == 3 && count == 1) BinaryPrimitives.WriteUInt16LittleEndian(e[8..], (ushort)value);
            else BinaryPrimitives.WriteUInt32LittleEndian(e[8..], value);
        }
        for (int i = 0; i < 3; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(bits + 2 * i), 8);
        for (int t = 0; t < tiles; t++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offsets + 4 * t), (uint)data);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(counts + 4 * t), (uint)tile.Length);
        }
        tile.CopyTo(bytes, data);
        return bytes;
    }

    [Test]
    public void ATiffWhoseTilesAllShareOneTileIsRefusedBeforeReading()
    {
        var path = Path.Combine(_dir, "bomb.tif");
        File.WriteAllBytes(path, OneTileBomb(40_000));
        Assert.That(OpenSlideSlide.DetectVendor(path), Is.EqualTo("generic-tiff"), "OpenSlide would read it");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<GigaPathException>(() => SlideOpener.Open(path, 0.5))!;
        Assert.That(e.Message, Does.StartWith(path + ": directory 0 declares 40000 x 40000 pixels").And.Contain("decompression bomb"));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "refused from the tile table, not after reading the level");

        var run = CliInvocation.Run("run", path, "--tile-model", PipelineTestData.TileModelDir, "--slide-model", PipelineTestData.SlideModelDir,
            "--out", Path.Combine(_dir, "out"), "--progress", "lines", "--slide-mpp", "0.5");
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Out, Does.Contain("FAILED bomb").And.Contain("decompression bomb"));

        // Real slides pass: every fixture's directories hold their own tiles.
        foreach (var slide in new[] { SlideFixtures.CmuSmallRegion, SlideFixtures.SmallSvs })
            Assert.That(TiffStructure.FindBomb(slide), Is.Null, slide);
    }
}
