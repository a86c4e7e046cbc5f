using GigaPath.Slides;
using NUnit.Framework;
using SkiaSharp;

namespace GigaPath.Tests.Slides;

public class TilingThumbnailTests
{
    [Test]
    public void OutlinesKeptTilesAndTintsTissue()
    {
        // 1024 x 512 at 0.5 µm/px, rendered 1:1 (maxSide 1024): purple fills tile (1, 0) only.
        using var slide = SyntheticSlides.Slide(SyntheticSlides.Image(1024, 512, (256, 0, 256, 256, (120, 60, 140))));
        var plan = TilingPlanner.Plan(slide, new TilingOptions());
        Assert.That(plan.Tiles.Select(t => (t.GridX, t.GridY)), Is.EqualTo(new[] { (1, 0) }));
        var image = TilingThumbnail.Render(slide, plan, 1024);
        Assert.That((image.Width, image.Height), Is.EqualTo((1024, 512)));
        (int R, int G, int B) At(int x, int y) { int o = (y * image.Width + x) * 3; return (image.Pixels[o], image.Pixels[o + 1], image.Pixels[o + 2]); }

        var edge = At(256, 128);
        Assert.That(edge.B, Is.GreaterThan(edge.R + 50), "the kept tile's left edge is outlined in blue");
        var inside = At(384, 128);
        Assert.That(inside.G, Is.GreaterThan(60 + 20), "tissue is tinted green");
        Assert.That(inside.R, Is.LessThan(120));
        Assert.That(At(700, 300), Is.EqualTo((255, 255, 255)), "background is left alone");
    }

    [Test]
    public void WritesAPngAtomically()
    {
        var dir = FixturePaths.TempDir();
        try
        {
            using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
            var plan = SlideFixtures.CmuDefaultPlan;
            var path = Path.Combine(dir, "thumb.png");
            TilingThumbnail.Write(path, slide, plan, 400);
            Assert.That(Directory.GetFiles(dir), Is.EqualTo(new[] { path }), "no temporary file left");
            using var decoded = SKBitmap.Decode(path);
            Assert.That((decoded.Width, decoded.Height), Is.EqualTo((299, 400)));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
