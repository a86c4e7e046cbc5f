using System.Security.Cryptography;
using System.Text.Json;
using GigaPath.Imaging;
using NUnit.Framework;

namespace GigaPath.Tests.Imaging;

/// <summary>Decoded pixels equal Pillow 9.4's <c>Image.open(f).convert("RGB")</c> across formats and layouts.</summary>
public class ImageDecoderFormatTests
{
    private static IEnumerable<PngCases.Case> Pngs() => PngCases.All();
    private static IEnumerable<TiffCases.Case> Tiffs() => TiffCases.All();

    [TestCaseSource(nameof(Pngs))]
    public void PngDecodesLikePillow(PngCases.Case c)
    {
        var image = ImageDecoder.Decode(c.Png, c.Name);
        Assert.That((image.Width, image.Height), Is.EqualTo((PngCases.Width, PngCases.Height)));
        TilePreprocessorFixtureTests.AssertBytesEqual(image.Pixels, c.ExpectedRgb, c.Name);
    }

    [TestCaseSource(nameof(Tiffs))]
    public void TiffDecodesLikePillow(TiffCases.Case c)
    {
        var image = ImageDecoder.Decode(c.Tiff, c.Name);
        Assert.That((image.Width, image.Height), Is.EqualTo((c.ExpectedWidth, c.ExpectedHeight)));
        TilePreprocessorFixtureTests.AssertBytesEqual(image.Pixels, c.ExpectedRgb, c.Name);
    }

    private static IEnumerable<string> PillowWrittenFiles()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(FixturePaths.Get("imaging_decode", "expected.json")));
        return doc.RootElement.EnumerateObject().Select(p => p.Name).ToList();
    }

    [TestCaseSource(nameof(PillowWrittenFiles))]
    public void PillowWrittenFilesDecodeLikePillow(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(FixturePaths.Get("imaging_decode", "expected.json")));
        var expected = doc.RootElement.GetProperty(file);
        var image = ImageDecoder.DecodeFile(FixturePaths.Get("imaging_decode", file));
        Assert.That((image.Width, image.Height),
            Is.EqualTo((expected.GetProperty("width").GetInt32(), expected.GetProperty("height").GetInt32())));
        Assert.That(Convert.ToHexStringLower(SHA256.HashData(image.Pixels)), Is.EqualTo(expected.GetProperty("rgb_sha256").GetString()),
            $"{file} (Pillow mode {expected.GetProperty("mode").GetString()})");
    }

    [Test]
    public void EncodePngRoundTripsExactly()
    {
        var source = ImageDecoder.DecodeFile(FixturePaths.Get("preprocess", "prov_normal_000_1.png"));
        var png = ImageDecoder.EncodePng(source);
        Assert.That(png.AsSpan(0, 8).ToArray(), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }));
        var back = ImageDecoder.Decode(png, "round trip");
        Assert.That((back.Width, back.Height), Is.EqualTo((source.Width, source.Height)));
        TilePreprocessorFixtureTests.AssertBytesEqual(back.Pixels, source.Pixels, "round trip");
    }

    [Test]
    public void DecodeFileAndDecodeAgree()
    {
        var path = FixturePaths.Get("preprocess", "01581x_25327y.png");
        var fromFile = ImageDecoder.DecodeFile(path);
        var fromBytes = ImageDecoder.Decode(File.ReadAllBytes(path), path);
        Assert.That((fromFile.Width, fromFile.Height), Is.EqualTo((256, 256)));
        TilePreprocessorFixtureTests.AssertBytesEqual(fromFile.Pixels, fromBytes.Pixels, "file vs bytes");
    }
}
