using GigaPath.IO;
using NUnit.Framework;
using GigaPath.Models.Slide;

namespace GigaPath.Tests.IO;

public class TilingCoordsRoundTripTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("tiling-coords");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private static TileFeatures Sample() =>
        new TileFeatures([1, 2, 3, 4, 5, 6], 3, 2, [0, 0, 513, 0, 0, 513], new Dictionary<string, object>(), "sample")
        {
            TilingCoords = [0, 0, 256, 0, 0, 256],
        };

    [TestCase("h5")]
    [TestCase("safetensors")]
    public void BothCoordinateSetsSurviveAWriteAndRead(string ext)
    {
        var path = Path.Combine(_dir, $"t.{ext}");
        if (ext == "h5") TileFeatureFile.WriteH5(path, Sample(), new Dictionary<string, object> { ["patch_size"] = 256 });
        else TileFeatureFile.WriteSafetensors(path, Sample());
        var back = TileFeatureFile.Read(path);
        Assert.That(back.Features, Is.EqualTo(Sample().Features));
        Assert.That(back.Coords, Is.EqualTo(Sample().Coords));
        Assert.That(back.TilingCoords, Is.EqualTo(Sample().TilingCoords));
        var positions = TilePositions.Resolve(back, 256);
        Assert.That(positions.TilingCoords, Is.EqualTo(Sample().TilingCoords), "the slide encoder gets the tiling coordinates");
        Assert.That(positions.Rule, Is.EqualTo("coords_tiling"));
        var level0Only = back with { TilingCoords = null, Attributes = new Dictionary<string, object>(), CoordsAreLevel0 = true };
        Assert.That(Assert.Throws<GigaPathException>(() => TilePositions.Resolve(level0Only, 256))!.Message,
            Does.Contain("level0TileSize").And.Contain("patch_size_level0"), "level-0 coords are never taken as positions");
    }

    [Test]
    public void MismatchedTilingCoordsAreRefused()
    {
        var bad = Sample() with { TilingCoords = [0, 0] };
        Assert.That(Assert.Throws<GigaPathException>(() => bad.Validate())!.Message, Does.Contain("coords_tiling hold 1 rows"));
    }
}
