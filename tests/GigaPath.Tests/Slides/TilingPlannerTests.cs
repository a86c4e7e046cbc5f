using GigaPath.Imaging;
using GigaPath.Slides;
using NUnit.Framework;

namespace GigaPath.Tests.Slides;

public class TilingPlannerTests
{
    [Test]
    public void RealSlideAtHalfMicronReadsLevelZeroTileForTile()
    {
        var plan = SlideFixtures.CmuDefaultPlan;
        Assert.That(plan.SlideMpp, Is.EqualTo(0.499));
        Assert.That(plan.MppSource, Is.EqualTo(MppSource.Metadata));
        Assert.That((plan.Level, plan.ReadSize, plan.Resampled), Is.EqualTo((0, 256, false)));
        Assert.That(plan.TileMpp, Is.EqualTo(0.499).Within(1e-12));
        // 2220 x 2967 holds 8 x 11 whole 256-px tiles (README: 88 whole of 108 positions); partial ones are skipped.
        Assert.That((plan.GridColumns, plan.GridRows), Is.EqualTo((8, 11)));
        Assert.That(plan.Tiles, Has.Count.EqualTo(48), "tiles with more than 10% tissue (luminance Otsu)");
        Assert.That(plan.Tiles.Count(t => t.TissueFraction >= 0.25), Is.EqualTo(39));
        Assert.That(plan.Mask!.Threshold, Is.EqualTo(177).Within(2), "Otsu luminance threshold between stain and glass");

        for (int i = 0; i < plan.Tiles.Count; i++)
        {
            var t = plan.Tiles[i];
            Assert.That(t.Index, Is.EqualTo(i));
            Assert.That((t.Level0X, t.Level0Y), Is.EqualTo((t.GridX * 256L, t.GridY * 256L)));
            Assert.That((t.TilingX, t.TilingY), Is.EqualTo((t.GridX * 256, t.GridY * 256)));
            Assert.That(t.TissueFraction, Is.GreaterThan(0.1f).And.LessThanOrEqualTo(1f));
            if (i > 0)
            {
                var p = plan.Tiles[i - 1];
                Assert.That(t.GridY > p.GridY || (t.GridY == p.GridY && t.GridX > p.GridX), Is.True, "row-major order");
            }
        }
    }

    [Test]
    public void PartialEdgePositionsAccountForTheReadmeCount()
    {
        var mask = SlideFixtures.CmuDefaultPlan.Mask!;
        // Over all 9 x 12 positions, a partial one measured on its part inside the slide: the README's 44 of 108.
        int atLeastQuarter = 0;
        for (int gy = 0; gy < 12; gy++)
            for (int gx = 0; gx < 9; gx++)
                if (mask.TileFraction(gx, gy) >= 0.25) atLeastQuarter++;
        Assert.That(atLeastQuarter, Is.EqualTo(44));
    }

    [Test]
    public void TilePixelsAreTheRegionAtTheTileCorner()
    {
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        var plan = SlideFixtures.CmuDefaultPlan;
        foreach (var t in new[] { plan.Tiles[0], plan.Tiles[plan.Tiles.Count / 2], plan.Tiles[^1] })
            Assert.That(TilingPlanner.ReadTile(slide, plan, t).Pixels,
                Is.EqualTo(slide.ReadRegion(t.Level0X, t.Level0Y, 0, 256, 256).Pixels), $"tile {t.Index}");
    }

    [Test]
    public void CoarserTargetReadsLargerAndResamples()
    {
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        var plan = TilingPlanner.Plan(slide, new TilingOptions { TargetMpp = 1.0 });
        // round(256 x 1.0 / 0.499) = 513 level-0 pixels per tile.
        Assert.That((plan.Level, plan.ReadSize, plan.Resampled), Is.EqualTo((0, 513, true)));
        Assert.That((plan.GridColumns, plan.GridRows), Is.EqualTo((2220 / 513, 2967 / 513)));
        Assert.That(plan.TileMpp, Is.EqualTo(513 * 0.499 / 256).Within(1e-12));
        foreach (var t in plan.Tiles)
        {
            Assert.That((t.Level0X, t.Level0Y), Is.EqualTo((t.GridX * 513L, t.GridY * 513L)));
            Assert.That((t.TilingX, t.TilingY), Is.EqualTo((t.GridX * 256, t.GridY * 256)));
        }
        var tile = plan.Tiles[plan.Tiles.Count / 2];
        var pixels = TilingPlanner.ReadTile(slide, plan, tile);
        Assert.That((pixels.Width, pixels.Height), Is.EqualTo((256, 256)));
        var expected = PillowResample.ResizeBicubic(slide.ReadRegion(tile.Level0X, tile.Level0Y, 0, 513, 513), 256, 256);
        Assert.That(pixels.Pixels, Is.EqualTo(expected.Pixels));
    }

    [Test]
    public void PyramidLevelIsChosenAtOrFinerThanTheTarget()
    {
        using var slide = SlideOpener.Open(SlideFixtures.BoxesTiff);
        var none = new TilingOptions { TileSize = 32, TissueMethod = TissueMethod.None };
        // Level MPPs at 0.25 µm/px: 0.25, 0.5, 1.004, 2.02.
        var exact = TilingPlanner.Plan(slide, none with { SlideMpp = 0.25 });
        Assert.That((exact.Level, exact.ReadSize, exact.Resampled, exact.MppSource), Is.EqualTo((1, 32, false, MppSource.Override)));
        Assert.That((exact.GridColumns, exact.GridRows), Is.EqualTo((150 / 32, 125 / 32)));
        Assert.That(exact.Tiles, Has.Count.EqualTo(4 * 3), "no detection: every whole tile");
        Assert.That(exact.Tiles.Select(t => (t.Level0X, t.Level0Y)), Does.Contain((64L * 3, 64L * 2)));
        Assert.That(exact.Tiles.All(t => float.IsNaN(t.TissueFraction)), Is.True);
        var tile = exact.Tiles[5];
        Assert.That(TilingPlanner.ReadTile(slide, exact, tile).Pixels,
            Is.EqualTo(slide.ReadRegion(tile.Level0X, tile.Level0Y, 1, 32, 32).Pixels));

        // 0.3 µm/px: level 1 would be 0.6 (coarser than 0.5 beyond tolerance), so level 0 is read at 53 px and resized.
        var fine = TilingPlanner.Plan(slide, none with { SlideMpp = 0.3 });
        Assert.That((fine.Level, fine.ReadSize, fine.Resampled), Is.EqualTo((0, 53, true)));

        // 0.51 µm/px at level 1 is within the 5% tolerance: read as is.
        var near = TilingPlanner.Plan(slide, none with { SlideMpp = 0.255 });
        Assert.That((near.Level, near.ReadSize, near.Resampled), Is.EqualTo((1, 32, false)));

        // Target 1.0 at 0.25: level 2 is 1.004 µm/px, within tolerance.
        var coarse = TilingPlanner.Plan(slide, none with { SlideMpp = 0.25, TargetMpp = 1.0, TileSize = 16 });
        Assert.That((coarse.Level, coarse.ReadSize, coarse.Resampled), Is.EqualTo((2, 16, false)));
    }

    [Test]
    public void MissingMppIsAnErrorUnlessOverridden()
    {
        using var slide = SlideOpener.Open(SlideFixtures.BoxesTiff);
        var ex = Assert.Throws<GigaPathException>(() => TilingPlanner.Plan(slide, new TilingOptions { TileSize = 32 }));
        Assert.That(ex!.Message, Does.Contain("boxes.tiff").And.Contain("no MPP metadata").And.Contain("TilingOptions.SlideMpp"));
        // No tissue detection: its mask would scan level 3, whose pixels OpenSlide returns differently on every open
        // (Fixtures/slides/README.md).
        var plan = TilingPlanner.Plan(slide, new TilingOptions { TileSize = 32, SlideMpp = 0.5, TissueMethod = TissueMethod.None });
        Assert.That((plan.SlideMpp, plan.MppSource, plan.Level), Is.EqualTo((0.5, MppSource.Override, 0)));
        Assert.That(plan.Tiles, Has.Count.EqualTo((300 / 32) * (250 / 32)), "every whole 32-px tile of 300 x 250");
    }

    [Test]
    public void OverrideBeatsMetadata()
    {
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        var plan = TilingPlanner.Plan(slide, new TilingOptions { SlideMpp = 0.25 });
        Assert.That((plan.SlideMpp, plan.MppSource, plan.ReadSize, plan.Resampled), Is.EqualTo((0.25, MppSource.Override, 512, true)));
    }

    [Test]
    public void SlideCoarserThanTargetIsAnError()
    {
        using var slide = SyntheticSlides.Slide(SyntheticSlides.Image(512, 512), mpp: 1.0);
        var ex = Assert.Throws<GigaPathException>(() => TilingPlanner.Plan(slide, new TilingOptions()));
        Assert.That(ex!.Message, Does.Contain("synthetic.png").And.Contain("coarser than the target").And.Contain("TilingOptions.TargetMpp"));
    }

    [Test]
    public void NonSquarePixelsAreAnError()
    {
        using var slide = new SyntheticSlides.WithMpp(SyntheticSlides.Slide(SyntheticSlides.Image(512, 512)), 0.25, 0.5);
        var ex = Assert.Throws<GigaPathException>(() => TilingPlanner.Plan(slide, new TilingOptions()));
        Assert.That(ex!.Message, Does.Contain("not square").And.Contain("synthetic.png"));
        using var onlyY = new SyntheticSlides.WithMpp(SyntheticSlides.Slide(SyntheticSlides.Image(512, 512, (0, 0, 512, 512, (90, 20, 90)))), null, 0.5);
        Assert.That(TilingPlanner.Plan(onlyY, new TilingOptions { TissueMethod = TissueMethod.None }).SlideMpp, Is.EqualTo(0.5));
    }

    [Test]
    public void GridLargerThanTheSlideEncoderIsAnError()
    {
        using var slide = SyntheticSlides.Slide(SyntheticSlides.Image(2004, 8, (0, 0, 2004, 8, (80, 20, 80))));
        var options = new TilingOptions { TileSize = 2, TissueMethod = TissueMethod.None };
        var ex = Assert.Throws<GigaPathException>(() => TilingPlanner.Plan(slide, options));
        Assert.That(ex!.Message, Does.Contain("1002 x 4").And.Contain("1000 x 1000").And.Contain("synthetic.png"));
        Assert.That(TilingPlanner.Plan(slide, options with { MaxGridSide = null }).Tiles, Has.Count.EqualTo(1002 * 4));
    }

    [Test]
    public void SlideSmallerThanATileIsAnError()
    {
        using var slide = SlideOpener.Open(SlideFixtures.SmallSvs);
        var ex = Assert.Throws<GigaPathException>(() => TilingPlanner.Plan(slide, new TilingOptions()));
        Assert.That(ex!.Message, Does.Contain("small.svs").And.Contain("smaller than one 256-pixel tile"));
    }

    [TestCase(0, "tile size")]
    [TestCase(-1.0, "target MPP")]
    public void BadOptionsAreNamed(double bad, string field)
    {
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        var options = field == "tile size" ? new TilingOptions { TileSize = (int)bad } : new TilingOptions { TargetMpp = bad };
        var ex = Assert.Throws<GigaPathException>(() => TilingPlanner.Plan(slide, options));
        Assert.That(ex!.Message, Does.Contain(field));
    }
}
