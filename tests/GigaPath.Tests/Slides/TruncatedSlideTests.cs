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
}
