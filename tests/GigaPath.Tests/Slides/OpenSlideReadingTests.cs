using GigaPath.Slides;
using GigaPath.Slides.Native;
using NUnit.Framework;

namespace GigaPath.Tests.Slides;

public class OpenSlideReadingTests
{
    [Test]
    public void AperioPropertiesLevelsAndMpp()
    {
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        Assert.That(slide, Is.InstanceOf<OpenSlideSlide>());
        Assert.That(slide.Vendor, Is.EqualTo("aperio"));
        Assert.That(slide.LevelCount, Is.EqualTo(1));
        Assert.That(slide.LevelDimensions(0), Is.EqualTo((2220L, 2967L)));
        Assert.That(slide.LevelDownsample(0), Is.EqualTo(1.0));
        Assert.That(slide.MppX, Is.EqualTo(0.499));
        Assert.That(slide.MppY, Is.EqualTo(0.499));
        Assert.That(slide.ObjectivePower, Is.EqualTo(20));
        Assert.That(slide.Properties["openslide.vendor"], Is.EqualTo("aperio"));
        Assert.That(slide.Properties["aperio.MPP"], Is.EqualTo("0.4990"));
        Assert.That(slide.Properties["openslide.level[0].tile-width"], Is.EqualTo("240"));
        Assert.That(slide.AssociatedImages, Is.EquivalentTo(new Dictionary<string, (long, long)>
        {
            ["label"] = (387, 463), ["macro"] = (1280, 431), ["thumbnail"] = (574, 768),
        }));
    }

    [Test]
    public void GenericTiffPyramidWithoutMpp()
    {
        using var slide = (OpenSlideSlide)SlideOpener.Open(SlideFixtures.BoxesTiff);
        Assert.That(slide.Vendor, Is.EqualTo("generic-tiff"));
        Assert.That(Enumerable.Range(0, slide.LevelCount).Select(slide.LevelDimensions),
            Is.EqualTo(new[] { (300L, 250L), (150L, 125L), (75L, 62L), (37L, 31L) }));
        Assert.That(slide.LevelDownsample(2), Is.EqualTo(4.016).Within(1e-3));
        Assert.That(slide.LevelDownsample(3), Is.EqualTo(8.086).Within(1e-3));
        // The file's 72-dpi TIFF resolution tags must not pass for a microscope resolution.
        Assert.That(slide.Properties["tiff.ResolutionUnit"], Is.EqualTo("centimeter"));
        Assert.That(slide.MppX, Is.Null);
        Assert.That(slide.MppY, Is.Null);
        Assert.That(slide.ObjectivePower, Is.Null);
        Assert.That(slide.AssociatedImages, Is.Empty);
        foreach (var ds in new[] { 0.5, 1.0, 1.9, 2.0, 4.0, 4.1, 100.0 })
            Assert.That(SlideRegions.BestLevelForDownsample(slide, ds), Is.EqualTo(slide.BestLevelForDownsample(ds)), $"downsample {ds}");
    }

    [TestCase("small.svs", 16, 16, "bbc6c02413df8076736cbb92b4bb5787")]
    [TestCase("boxes.tiff", 64, 48, "5da2392339b4db98d886787d4c690e6b")]
    public void ReadRegionStraightRgbaMatchesOpenSlidePython(string file, int w, int h, string md5)
    {
        using var slide = (OpenSlideSlide)SlideOpener.Open(SlideFixtures.Path(file));
        Assert.That(SlideFixtures.Md5(slide.ReadRegionRgba(0, 0, 0, w, h)), Is.EqualTo(md5));
    }

    [Test]
    public void ReadRegionIsRgbaCompositedOverWhite()
    {
        using var slide = (OpenSlideSlide)SlideOpener.Open(SlideFixtures.BoxesTiff);
        // Straddles the right edge, so part of it is transparent and must come back white.
        const int x = 260, y = 200, w = 80, h = 70;
        var rgba = slide.ReadRegionRgba(x, y, 0, w, h);
        var rgb = slide.ReadRegion(x, y, 0, w, h);
        int transparent = 0;
        for (int i = 0; i < w * h; i++)
        {
            int a = rgba[i * 4 + 3];
            if (a == 0) transparent++;
            for (int c = 0; c < 3; c++)
            {
                // Straight colour blended over white, within the truncation of un-premultiplying.
                double expected = rgba[i * 4 + c] * a / 255.0 + 255 - a;
                Assert.That(rgb.Pixels[i * 3 + c], Is.EqualTo(expected).Within(1.0), $"pixel {i} channel {c}");
            }
        }
        Assert.That(transparent, Is.EqualTo(w * h - 40 * 50), "pixels beyond 300x250 are transparent");
    }

    [Test]
    public void ReadsAtCoarserLevelsAndAssociatedImages()
    {
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        var thumb = slide.ReadAssociatedImage("thumbnail");
        Assert.That((thumb.Width, thumb.Height), Is.EqualTo((574, 768)));
        var label = slide.ReadAssociatedImage("label");
        Assert.That((label.Width, label.Height), Is.EqualTo((387, 463)));
        var ex = Assert.Throws<GigaPathException>(() => slide.ReadAssociatedImage("barcode"));
        Assert.That(ex!.Message, Does.Contain("barcode").And.Contain("CMU-1-Small-Region.svs").And.Contain("thumbnail"));

        // Level 1 is stable; levels 2 and 3 of boxes.tiff are not (Fixtures/slides/README.md), so only their size is checked.
        using var boxes = (OpenSlideSlide)SlideOpener.Open(SlideFixtures.BoxesTiff);
        Assert.That(SlideFixtures.Md5(boxes.ReadRegionRgba(0, 0, 1, 150, 125)), Is.EqualTo("525dc1f3875b6ee6cd50b633452b8dc5"), "python3-openslide's level-1 read");
        var l3 = boxes.ReadRegion(0, 0, 3, 37, 31);
        Assert.That((l3.Width, l3.Height, l3.Pixels.Length), Is.EqualTo((37, 31, 37 * 31 * 3)));
        Assert.Throws<GigaPathException>(() => boxes.ReadRegion(0, 0, 4, 8, 8));
    }

    [Test]
    public void CentreOfTheRealSlideIsTissueColoured()
    {
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        var region = slide.ReadRegion(2220 / 2 - 256, 2967 / 2 - 256, 0, 512, 512);
        var mean = new double[3];
        for (int i = 0; i < region.Pixels.Length; i++) mean[i % 3] += region.Pixels[i];
        // README: centre 512x512 mean RGB (160, 116, 150).
        Assert.That(mean.Select(m => Math.Round(m / (512 * 512))), Is.EqualTo(new double[] { 160, 116, 150 }));
    }

    [Test]
    public void ChunkedLargeReadEqualsPiecewiseReads()
    {
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        var whole = slide.ReadRegion(0, 0, 0, 2220, 2967);
        var piece = slide.ReadRegion(1000, 2000, 0, 300, 200);
        Assert.That(piece.Pixels, Is.EqualTo(whole.Crop(1000, 2000, 300, 200).Pixels));
    }

    [Test]
    public void ThumbnailFitsAndAveragesTheLevel()
    {
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        var thumb = slide.GetThumbnail(300);
        Assert.That((thumb.Width, thumb.Height), Is.EqualTo((224, 300)));
        using var boxes = SlideOpener.Open(SlideFixtures.BoxesTiff);
        var small = boxes.GetThumbnail(150);
        Assert.That((small.Width, small.Height), Is.EqualTo((150, 125)));
        // Averaging level 1 pixel-for-pixel is that level itself (level 1: levels 2 and 3 of boxes.tiff are unstable).
        Assert.That(small.Pixels, Is.EqualTo(boxes.ReadRegion(0, 0, 1, 150, 125).Pixels));
    }

    [Test]
    public void VersionStringIsReported()
    {
        Assert.That(OpenSlideSlide.LibraryVersion, Does.Match(@"^\d+\.\d+\.\d+"));
    }

    [Test]
    public void MissingLibraryGivesInstallHint()
    {
        var ex = Assert.Throws<GigaPathException>(() => OpenSlideLibrary.Load(["libopenslide-does-not-exist.so.9"]));
        Assert.That(ex!.Message, Does.Contain("apt-get install libopenslide0").And.Contain("libopenslide-does-not-exist.so.9"));
    }

    [Test]
    public void DisposedSlideRefusesReads()
    {
        var slide = SlideOpener.Open(SlideFixtures.SmallSvs);
        slide.Dispose();
        Assert.Throws<ObjectDisposedException>(() => slide.ReadRegion(0, 0, 0, 4, 4));
    }

    [Test]
    public void ConcurrentReadsMatchSequentialOnes()
    {
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        var origins = Enumerable.Range(0, 32).Select(i => (X: (i % 8) * 256L, Y: (i / 8) * 256L)).ToArray();
        var sequential = origins.Select(o => slide.ReadRegion(o.X, o.Y, 0, 256, 256).Pixels).ToArray();
        var parallel = new byte[origins.Length][];
        Parallel.For(0, origins.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 },
            i => parallel[i] = slide.ReadRegion(origins[i].X, origins[i].Y, 0, 256, 256).Pixels);
        for (int i = 0; i < origins.Length; i++) Assert.That(parallel[i], Is.EqualTo(sequential[i]), $"tile {i}");
    }
}
