using GigaPath.Imaging;
using NUnit.Framework;

namespace GigaPath.Tests.Imaging;

/// <summary>Bad input fails with a <see cref="GigaPathException"/> that names the source, before large allocations.</summary>
public class ImageDecoderErrorTests
{
    private static GigaPathException DecodeFails(byte[] bytes, string name, long maxPixels = ImageDecoder.DefaultMaxPixels)
    {
        var e = Assert.Catch<GigaPathException>(() => ImageDecoder.Decode(bytes, name, maxPixels))!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Message, Does.Contain(name));
        return e;
    }

    [Test]
    public void NotAnImageIsRejected()
    {
        var e = DecodeFails("just some text, not pixels"u8.ToArray(), "notes.txt");
        Assert.That(e, Is.Not.TypeOf<ImageTooLargeException>());
        Assert.That(e.Message, Does.Contain("not a readable image"));
    }

    [Test]
    public void EmptyInputIsRejected() =>
        Assert.That(DecodeFails([], "empty.png").Message, Does.Contain("empty"));

    [Test]
    public void MissingFileIsReported()
    {
        var path = Path.Combine(FixturePaths.TempDir(), "missing.png");
        var e = Assert.Catch<GigaPathException>(() => ImageDecoder.DecodeFile(path))!;
        Assert.That(e.Message, Does.Contain(path));
    }

    [TestCase("rgb8")]
    [TestCase("rgba8")]
    [TestCase("gray16")]
    [TestCase("gray16-adam7")]
    public void TruncatedPngIsRejected(string caseName)
    {
        var png = PngCases.All().Single(c => c.Name == caseName).Png;
        // Cut inside the image data: the header still parses, the pixels cannot all be decoded.
        var e = DecodeFails(png[..(png.Length - 30)], "cut.png");
        Assert.That(e.Message, Does.Contain("truncated").Or.Contain("corrupt"));
    }

    [Test]
    public void CorruptPngDataIsRejected()
    {
        var png = PngCases.All().Single(c => c.Name == "gray16-filtered").Png;
        var broken = (byte[])png.Clone();
        for (int i = 45; i < 60; i++) broken[i] ^= 0x5A; // inside the zlib stream of IDAT
        DecodeFails(broken, "broken.png");
    }

    [TestCase(0.5)]
    [TestCase(0.9)]
    public void TruncatedJpegIsRejected(double keep)
    {
        var jpeg = File.ReadAllBytes(FixturePaths.Get("imaging_decode", "c420.jpg"));
        var e = DecodeFails(jpeg[..(int)(jpeg.Length * keep)], "cut.jpg");
        Assert.That(e.Message, Does.Contain("truncated").Or.Contain("corrupt"));
    }

    [Test]
    public void TiffWithoutItsDirectoryIsRejected()
    {
        // The hand-written TIFFs put the strip first and the directory at the end: half the file has no directory.
        var tiff = TiffCases.All().First(c => c.Name == "rgb8").Tiff;
        DecodeFails(tiff[..(tiff.Length / 2)], "cut.tif");
        DecodeFails(tiff[..6], "header-only.tif");
    }

    [Test]
    public void TiffWhosePixelDataIsMissingIsRejected()
    {
        // A readable directory whose strip lies past the end of the file.
        var tiff = (byte[])TiffCases.All().First(c => c.Name == "rgb8").Tiff.Clone();
        int ifd = BitConverter.ToInt32(tiff, 4), entries = BitConverter.ToUInt16(tiff, ifd);
        int stripOffsets = Enumerable.Range(0, entries).Select(i => ifd + 2 + 12 * i).Single(e => BitConverter.ToUInt16(tiff, e) == 273);
        BitConverter.GetBytes(tiff.Length + 1000).CopyTo(tiff, stripOffsets + 8);
        var e = DecodeFails(tiff, "nodata.tif");
        Assert.That(e.Message, Does.Contain("cannot decode the TIFF image"));
    }

    [Test]
    public void TruncatedSixteenBitTiffIsRejected()
    {
        var c = TiffCases.All().First(c => c.Name == "gray16");
        // Raw 16-bit strips take the scanline path: a strip cut short there must fail too.
        var tiff = (byte[])c.Tiff.Clone();
        int ifd = BitConverter.ToInt32(tiff, 4), entries = BitConverter.ToUInt16(tiff, ifd);
        int stripOffsets = Enumerable.Range(0, entries).Select(i => ifd + 2 + 12 * i).Single(e => BitConverter.ToUInt16(tiff, e) == 273);
        BitConverter.GetBytes(tiff.Length - 20).CopyTo(tiff, stripOffsets + 8);
        DecodeFails(tiff, "cut16.tif");
    }

    [Test]
    public void PngHeaderClaimingTenGigapixelsIsRejectedBeforeDecoding()
    {
        var png = TestImageFiles.PngHeaderOnly(100_000, 100_000);
        var e = DecodeFails(png, "bomb.png");
        Assert.That(e, Is.TypeOf<ImageTooLargeException>());
        Assert.That(e.Message, Does.Contain("100000x100000"));
        Assert.That(e.Message, Does.Contain("limit"));
    }

    [Test]
    public void TiffHeaderClaimingTenGigapixelsIsRejectedBeforeDecoding()
    {
        var tiff = TestImageFiles.Tiff(100_000, 100_000, 3, 2, new byte[12]);
        var e = DecodeFails(tiff, "bomb.tif");
        Assert.That(e, Is.TypeOf<ImageTooLargeException>());
        Assert.That(e.Message, Does.Contain("100000x100000"));
    }

    [Test]
    public void PixelLimitIsConfigurable()
    {
        var png = PngCases.All().First().Png;
        int pixels = PngCases.Width * PngCases.Height;
        Assert.That(ImageDecoder.Decode(png, "ok.png", maxPixels: pixels).Width, Is.EqualTo(PngCases.Width));
        Assert.That(DecodeFails(png, "small-limit.png", maxPixels: pixels - 1).Message, Does.Contain($"{PngCases.Width}x{PngCases.Height}"));
        var tiff = TiffCases.All().First().Tiff;
        DecodeFails(tiff, "small-limit.tif", maxPixels: TiffCases.Width * TiffCases.Height - 1);
    }
}
