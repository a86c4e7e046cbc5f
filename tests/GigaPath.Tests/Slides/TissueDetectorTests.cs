using GigaPath.Slides;
using NUnit.Framework;

namespace GigaPath.Tests.Slides;

public class TissueDetectorTests
{
    private static readonly (byte, byte, byte) Purple = (120, 60, 140);
    private static readonly (byte, byte, byte) Grey = (110, 110, 110);

    [Test]
    public void TileFractionsAreExactOnAlignedShapes()
    {
        // 1024 x 1024 at 0.5 µm/px: 4 x 4 tiles of 256, 16 x 16 mask cells of 16 px per tile.
        // Purple covers x in [256, 640) (tile 1 whole, half of tile 2) and y in [0, 512) (tiles 0 and 1).
        using var slide = SyntheticSlides.Slide(SyntheticSlides.Image(1024, 1024, (256, 0, 384, 512, Purple)));
        var plan = TilingPlanner.Plan(slide, new TilingOptions());
        Assert.That(plan.Mask!.CellsPerTile, Is.EqualTo(16));
        Assert.That(plan.Mask.CellSizeLevel0, Is.EqualTo(16));
        Assert.That(plan.Tiles.Select(t => (t.GridX, t.GridY, t.TissueFraction)),
            Is.EqualTo(new[] { (1, 0, 1f), (2, 0, 0.5f), (1, 1, 1f), (2, 1, 0.5f) }));
        Assert.That(plan.Tiles.Select(t => t.Index), Is.EqualTo(new[] { 0, 1, 2, 3 }));
    }

    [Test]
    public void MinimumFractionIsStrict()
    {
        using var slide = SyntheticSlides.Slide(SyntheticSlides.Image(1024, 512, (256, 0, 384, 512, Purple)));
        Assert.That(TilingPlanner.Plan(slide, new TilingOptions { MinTissueFraction = 0.5 }).Tiles.Select(t => t.GridX),
            Is.EqualTo(new[] { 1, 1 }));
        Assert.That(TilingPlanner.Plan(slide, new TilingOptions { MinTissueFraction = 0.49 }).Tiles, Has.Count.EqualTo(4));
    }

    [Test]
    public void SaturationIgnoresGreyWhereLuminanceDoesNot()
    {
        // A grey (colourless) square at tile (0, 0) and a purple one at tile (2, 0).
        using var slide = SyntheticSlides.Slide(SyntheticSlides.Image(1024, 256, (0, 0, 256, 256, Grey), (512, 0, 256, 256, Purple)));
        var luminance = TilingPlanner.Plan(slide, new TilingOptions { TissueMethod = TissueMethod.LuminanceOtsu });
        Assert.That(luminance.Tiles.Select(t => t.GridX), Is.EqualTo(new[] { 0, 2 }));
        var saturation = TilingPlanner.Plan(slide, new TilingOptions { TissueMethod = TissueMethod.SaturationOtsu });
        Assert.That(saturation.Tiles.Select(t => t.GridX), Is.EqualTo(new[] { 2 }));
        Assert.That(saturation.Mask!.Method, Is.EqualTo(TissueMethod.SaturationOtsu));
    }

    [Test]
    public void BothMethodsAgreeOnTheRealSlide()
    {
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        var lum = SlideFixtures.CmuDefaultPlan.Tiles.Select(t => (t.GridX, t.GridY)).ToHashSet();
        var sat = TilingPlanner.Plan(slide, new TilingOptions { TissueMethod = TissueMethod.SaturationOtsu }).Tiles
            .Select(t => (t.GridX, t.GridY)).ToHashSet();
        Assert.That(sat.Count, Is.EqualTo(48));
        Assert.That(lum.Intersect(sat).Count(), Is.GreaterThanOrEqualTo(46), "the two rules differ only at the tissue's edge");
    }

    [Test]
    public void BlankSlideHasNoTissue()
    {
        using var slide = SyntheticSlides.Slide(SyntheticSlides.Image(1024, 1024), name: "blank.png");
        var ex = Assert.Throws<GigaPathException>(() => TilingPlanner.Plan(slide, new TilingOptions()));
        Assert.That(ex!.Message, Does.Contain("blank.png").And.Contain("no tissue"));
    }

    [Test]
    public void FaintNoiseIsNotTissue()
    {
        // Background varying by a few levels (as JPEG noise does): Otsu still splits it, but the classes are too close.
        var image = SyntheticSlides.Image(512, 512, (0, 0, 256, 512, (250, 249, 251)), (256, 0, 256, 512, (243, 244, 242)));
        using var slide = SyntheticSlides.Slide(image, name: "noise.png");
        var ex = Assert.Throws<GigaPathException>(() => TilingPlanner.Plan(slide, new TilingOptions()));
        Assert.That(ex!.Message, Does.Contain("noise.png").And.Contain("no tissue"));
    }

    [Test]
    public void OtsuSplitsBetweenModes()
    {
        var h = new long[256];
        h[40] = 100;
        h[50] = 50;
        h[200] = 300;
        h[210] = 10;
        var split = Otsu.Threshold(h)!.Value;
        Assert.That(split.Threshold, Is.InRange(50, 199));
        Assert.That(split.LowMean, Is.EqualTo((40 * 100 + 50 * 50) / 150.0).Within(1e-9));
        Assert.That(split.HighMean, Is.EqualTo((200 * 300 + 210 * 10) / 310.0).Within(1e-9));
        var single = new long[256];
        single[7] = 1000;
        Assert.That(Otsu.Threshold(single), Is.Null);
    }

    [Test]
    public void MaskOnAPyramidUsesACoarseLevel()
    {
        // A pyramid of our own (downsamples 1, 2, 4, 8), not boxes.tiff: OpenSlide returns different pixels for its
        // coarse levels on every open (Fixtures/slides/README.md). Purple covers tiles (2..4, 1..2) whole and the left
        // half of tile (6, 4).
        using var slide = new SyntheticSlides.Pyramid(320, 256, [1, 2, 4, 8], (64, 32, 96, 64, Purple), (192, 128, 16, 32, Purple));
        var plan = TilingPlanner.Plan(slide, new TilingOptions { SlideMpp = 0.5, TileSize = 32 });
        // 32 px x 0.5 µm = 16 µm per tile, 2 cells of 8 µm = 16 level-0 px: the coarsest level with at least one pixel
        // per cell is level 3 (downsample 8).
        Assert.That(plan.Mask!.CellsPerTile, Is.EqualTo(2));
        Assert.That(plan.Mask.CellSizeLevel0, Is.EqualTo(16));
        Assert.That(plan.Mask.Level, Is.EqualTo(3));
        Assert.That((plan.Mask.CellsX, plan.Mask.CellsY), Is.EqualTo((20, 16)), "320 / 16 x 256 / 16: the whole slide");
        Assert.That(slide.Reads.Take(3), Is.All.Zero, "only level 3 was scanned");
        Assert.That(plan.Tiles.Select(t => (t.GridX, t.GridY, t.TissueFraction)),
            Is.EqualTo(new[] { (2, 1, 1f), (3, 1, 1f), (4, 1, 1f), (2, 2, 1f), (3, 2, 1f), (4, 2, 1f), (6, 4, 0.5f) }));
    }
}
