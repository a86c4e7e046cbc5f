using System.Text.Json;
using GigaPath.Imaging;
using GigaPath.Pipeline;
using GigaPath.Tests.Slides;
using NUnit.Framework;

namespace GigaPath.Tests.Cli;

public class TileCommandTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("tile-command");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    [Test]
    public void WritesThePlanTheThumbnailAndTheTiles()
    {
        var run = CliInvocation.Run("tile", SlideFixtures.CmuSmallRegion, "--out", _dir, "--save-tiles", "--target-mpp", "1");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        Assert.That(run.Out, Does.Contain("CMU-1-Small-Region: ").And.Contain("level 0, read 513 px"));
        var plan = JsonSerializer.Deserialize<TilingPlanFile>(File.ReadAllText(Path.Combine(_dir, "CMU-1-Small-Region.plan.json")), SlideManifest.Json)!;
        Assert.That(plan.Tiling.ReadSize, Is.EqualTo(513));
        Assert.That(plan.Tiles.Select(t => (t.X, t.Y)), Is.EqualTo(plan.Tiles.Select(t => (t.GridX * 513L, t.GridY * 513L))));
        Assert.That(plan.Tiles.Select(t => (t.TilingX, t.TilingY)), Is.EqualTo(plan.Tiles.Select(t => (t.GridX * 256, t.GridY * 256))));
        var tiles = Directory.GetFiles(Path.Combine(_dir, "CMU-1-Small-Region.tiles")).Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.That(tiles, Is.EqualTo(plan.Tiles.Select(t => $"{t.X:D5}x_{t.Y:D5}y.png").Order(StringComparer.Ordinal)));
        var first = ImageDecoder.DecodeFile(Path.Combine(_dir, "CMU-1-Small-Region.tiles", $"{plan.Tiles[0].X:D5}x_{plan.Tiles[0].Y:D5}y.png"));
        Assert.That((first.Width, first.Height), Is.EqualTo((256, 256)), "resampled to the tile size");
        Assert.That(File.Exists(Path.Combine(_dir, "CMU-1-Small-Region.thumbnail.png")), Is.True);
    }

    [Test]
    public void ABadSlideIsReportedAndTheOthersTiled()
    {
        var run = CliInvocation.Run("tile", SlideFixtures.BoxesTiff, SlideFixtures.CmuSmallRegion, "--out", _dir);
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error, Does.Contain("error: boxes: ").And.Contain("no MPP metadata"));
        Assert.That(File.Exists(Path.Combine(_dir, "CMU-1-Small-Region.plan.json")), Is.True);
        Assert.That(Directory.GetFiles(_dir, "boxes*"), Is.Empty);
    }
}
