using GigaPath.Slides;
using NUnit.Framework;

namespace GigaPath.Tests.Slides;

public class SlideOpenerTests
{
    [Test]
    public void MissingFileIsNamed()
    {
        var path = System.IO.Path.Combine(FixturePaths.Get("slides"), "no-such-slide.svs");
        var ex = Assert.Throws<GigaPathException>(() => SlideOpener.Open(path));
        Assert.That(ex!.Message, Does.Contain("not found").And.Contain("no-such-slide.svs"));
    }

    [Test]
    public void PlainImageWithoutMppAsksForIt()
    {
        var ex = Assert.Throws<GigaPathException>(() => SlideOpener.Open(SlideFixtures.BoxesPng));
        Assert.That(ex!.Message, Does.Contain("boxes.png").And.Contain("TilingOptions.SlideMpp").And.Contain("not a whole-slide image"));
    }

    [Test]
    public void PlainImageWithMppOpensAsOneLevelSlide()
    {
        using var slide = SlideOpener.Open(SlideFixtures.BoxesPng, slideMppOverride: 0.5);
        Assert.That(slide, Is.InstanceOf<ImageFileSlide>());
        Assert.That(slide.LevelCount, Is.EqualTo(1));
        Assert.That(slide.MppX, Is.EqualTo(0.5));
        Assert.That(slide.MppY, Is.EqualTo(0.5));
        var (w, h) = slide.LevelDimensions(0);
        Assert.That(w, Is.GreaterThan(0));
        var whole = slide.ReadRegion(0, 0, 0, (int)w, (int)h);
        // Out-of-image pixels read white, like OpenSlide's transparent ones.
        var beyond = slide.ReadRegion(w - 2, h - 2, 0, 4, 4);
        Assert.That(beyond.Crop(0, 0, 2, 2).Pixels, Is.EqualTo(whole.Crop((int)w - 2, (int)h - 2, 2, 2).Pixels));
        Assert.That(beyond.Crop(2, 0, 2, 4).Pixels, Is.All.EqualTo(255));
        Assert.That(beyond.Crop(0, 2, 4, 2).Pixels, Is.All.EqualTo(255));
    }

    [Test]
    public void NonImageNonSlideIsRejected()
    {
        var dir = FixturePaths.TempDir();
        try
        {
            var path = System.IO.Path.Combine(dir, "notes.txt");
            File.WriteAllText(path, "not a slide");
            var ex = Assert.Throws<GigaPathException>(() => SlideOpener.Open(path, 0.5));
            Assert.That(ex!.Message, Does.Contain("notes.txt").And.Contain("not a whole-slide image"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void UnopenableSlideQuotesOpenSlide()
    {
        var ex = Assert.Throws<GigaPathException>(() => SlideOpener.Open(SlideFixtures.Unopenable));
        Assert.That(ex!.Message, Does.Contain("unopenable.tiff").And.Contain("Unsupported TIFF compression: 52479"));
    }

    [Test]
    public void UnreadableRegionQuotesOpenSlide()
    {
        using var slide = SlideOpener.Open(SlideFixtures.Unreadable);
        Assert.That(slide.LevelDimensions(0), Is.EqualTo((16L, 16L)));
        var ex = Assert.Throws<GigaPathException>(() => slide.ReadRegion(0, 0, 0, 16, 16));
        Assert.That(ex!.Message, Does.Contain("unreadable.svs").And.Contain("Bogus marker length"));
        // OpenSlide keeps refusing once a handle has failed; so do we, with the same message.
        var again = Assert.Throws<GigaPathException>(() => slide.ReadRegion(0, 0, 0, 4, 4));
        Assert.That(again!.Message, Does.Contain("Bogus marker length"));
    }

    [Test]
    public void BadRegionSizesAreRejected()
    {
        using var slide = SlideOpener.Open(SlideFixtures.SmallSvs);
        Assert.Throws<GigaPathException>(() => slide.ReadRegion(0, 0, 0, 0, 16));
        var ex = Assert.Throws<GigaPathException>(() => slide.ReadRegion(0, 0, 0, 100_000, 100_000));
        Assert.That(ex!.Message, Does.Contain("too large").And.Contain("small.svs"));
    }
}
