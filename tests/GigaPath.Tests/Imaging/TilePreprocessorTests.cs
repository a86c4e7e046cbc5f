using GigaPath.Imaging;
using NUnit.Framework;

namespace GigaPath.Tests.Imaging;

public class TilePreprocessorTests
{
    [TestCase(256, 256, 256, 256)]
    [TestCase(210, 300, 256, 365)]   // int(365.71...) truncates
    [TestCase(300, 210, 365, 256)]   // landscape: the width is the long side
    [TestCase(128, 128, 256, 256)]
    [TestCase(512, 1024, 256, 512)]
    [TestCase(333, 410, 256, 315)]
    public void ResizedSizeFollowsTorchvision(int w, int h, int expectedW, int expectedH) =>
        Assert.That(TilePreprocessor.Default.GetResizedSize(w, h), Is.EqualTo((expectedW, expectedH)));

    [Test]
    public void ShortSideAlreadyRightIsNotResampled()
    {
        var image = PillowResampleTests.Pattern(256, 300);
        Assert.That(TilePreprocessor.Default.Resize(image), Is.SameAs(image));
    }

    [Test]
    public void CenterCropRoundsHalvesToEven()
    {
        var p = TilePreprocessor.Default;
        // (365 - 224) / 2 = 70.5 -> 70, (315 - 224) / 2 = 45.5 -> 46, (225 - 224) / 2 = 0.5 -> 0.
        foreach (var (h, top) in new[] { (365, 70), (315, 46), (225, 0), (227, 2) })
        {
            var image = PillowResampleTests.Pattern(256, h);
            Assert.That(p.CenterCrop(image).Pixels, Is.EqualTo(image.Crop(16, top, 224, 224).Pixels), $"height {h}");
        }
    }

    [Test]
    public void NormalizeIsChannelPlanarAndUsesMeanAndStd()
    {
        var p = new TilePreprocessor(2, 2, [0.5f, 0.25f, 0f], [0.5f, 0.25f, 1f]);
        var image = new RgbImage(2, 2, [255, 0, 51, 0, 255, 102, 255, 255, 153, 0, 0, 204]);
        var chw = new float[12];
        p.Normalize(image, chw);
        Assert.That(chw[..4], Is.EqualTo(new[] { 1f, -1f, 1f, -1f }));
        Assert.That(chw[4..8], Is.EqualTo(new[] { -1f, 3f, 3f, -1f }));
        Assert.That(chw[8..], Is.EqualTo(new[] { 0.2f, 0.4f, 0.6f, 0.8f }).Within(1e-7f));
    }

    [Test]
    public void CustomSizesGiveThatShape()
    {
        var p = new TilePreprocessor(64, 56, TilePreprocessor.ImageNetMean, TilePreprocessor.ImageNetStd);
        var result = p.Preprocess(PillowResampleTests.Pattern(100, 80));
        Assert.That(result, Has.Length.EqualTo(3 * 56 * 56));
        using var batch = p.ToBatch([result, result]);
        Assert.That(batch.shape, Is.EqualTo(new long[] { 2, 3, 56, 56 }));
    }

    [Test]
    public void DefaultMatchesAnExplicitlyBuiltTransform()
    {
        var explicitOne = new TilePreprocessor(256, 224, [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]);
        var image = PillowResampleTests.Pattern(300, 270);
        Assert.That(explicitOne.Preprocess(image).AsSpan().SequenceEqual(TilePreprocessor.Default.Preprocess(image)), Is.True);
    }

    [TestCase(0, 0)]
    [TestCase(256, 300)]
    [TestCase(256, 0)]
    public void BadSizesAreRejected(int resize, int crop) =>
        Assert.Throws<GigaPathException>(() => _ = new TilePreprocessor(resize, crop, TilePreprocessor.ImageNetMean, TilePreprocessor.ImageNetStd));

    [Test]
    public void BadMeanOrStdIsRejected()
    {
        var mean = TilePreprocessor.ImageNetMean;
        var e = Assert.Throws<GigaPathException>(() => _ = new TilePreprocessor(256, 224, [0.5f, 0.5f], [1f, 1f]))!;
        Assert.That(e.Message, Does.Contain("mean"));
        Assert.Throws<GigaPathException>(() => _ = new TilePreprocessor(256, 224, mean, [0.2f, 0f, 0.2f]));
        Assert.Throws<GigaPathException>(() => _ = new TilePreprocessor(256, 224, [float.NaN, 0f, 0f], [0.2f, 0.2f, 0.2f]));
    }

    [Test]
    public void WrongInputsToNormalizeAndBatchAreRejected()
    {
        var p = TilePreprocessor.Default;
        Assert.Throws<GigaPathException>(() => p.Normalize(PillowResampleTests.Pattern(200, 224), new float[p.OutputLength]));
        Assert.Throws<ArgumentException>(() => p.Normalize(PillowResampleTests.Pattern(224, 224), new float[10]));
        var e = Assert.Throws<GigaPathException>(() => p.ToBatch([new float[p.OutputLength], new float[5]]))!;
        Assert.That(e.Message, Does.Contain("tile 1"));
        Assert.Throws<GigaPathException>(() => p.ToBatch([]));
    }

    [Test]
    public void PreprocessFileReportsUnreadableImages()
    {
        var dir = FixturePaths.TempDir();
        var path = Path.Combine(dir, "tile.png");
        File.WriteAllText(path, "not a png");
        var e = Assert.Throws<ImageDecodeException>(() => TilePreprocessor.Default.PreprocessFile(path))!;
        Assert.That(e.Message, Does.Contain(path));
        Directory.Delete(dir, true);
    }
}
