using GigaPath.IO;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;
using GigaPath.Models.Slide;

namespace GigaPath.Tests.IO;

public class TileFeatureFileTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    [Test]
    public void AnImageGivenAsTileFeaturesIsAFeatureFileFormatErrorNamingTheFile()
    {
        var png = Path.Combine(_dir, "tile.png");
        File.WriteAllBytes(png, GigaPath.Imaging.ImageDecoder.EncodePng(new GigaPath.Imaging.RgbImage(4, 4)));
        var e = Assert.Throws<FeatureFileFormatException>(() => TileFeatureFile.Read(png))!;
        Assert.That(e.FilePath, Is.EqualTo(png));
        Assert.That(e.Message, Does.StartWith(png + ": not a tile-feature file"));

        // A file named .safetensors whose header is broken is the same kind of error, with the container's reason.
        var broken = Path.Combine(_dir, "broken.safetensors");
        File.WriteAllBytes(broken, [8, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'x']);
        var b = Assert.Throws<FeatureFileFormatException>(() => TileFeatureFile.Read(broken))!;
        Assert.That(b.FilePath, Is.EqualTo(broken));
        Assert.That(b.InnerException, Is.InstanceOf<WeightFormatException>());
    }

    [Test]
    public void ReadsAnH5pyFileInTheClamLayout()
    {
        var tiles = TileFeatureFile.Read(FixturePaths.Get("tile_features_h5py", "clam_layout.h5"));
        Assert.That((tiles.Count, tiles.Dim), Is.EqualTo((7, 5)));
        for (int i = 0; i < 7; i++)
        {
            for (int j = 0; j < 5; j++)
                Assert.That(tiles.Features[i * 5 + j], Is.EqualTo((i * 5 + j) / 8f - 2));
            Assert.That(tiles.Coords![2 * i], Is.EqualTo(1000 + 512 * i));
            Assert.That(tiles.Coords[2 * i + 1], Is.EqualTo(2000 + 256 * (i % 3)));
        }
        Assert.That(tiles.Attributes["patch_size"], Is.EqualTo(256L));
        Assert.That(tiles.Attributes["patch_level"], Is.EqualTo(0L));
        Assert.That(tiles.Attributes["name"], Is.EqualTo("TCGA-XX-0000"));
        Assert.That(tiles.Attributes["target_mpp"], Is.EqualTo(0.5));
        Assert.That(tiles.Attributes["downsample"], Is.EqualTo(new[] { 1.0, 1.0 }));
        Assert.That(tiles.Attributes["level_dim"], Is.EqualTo(new[] { 46000L, 32914L }));
        Assert.That(tiles.Attributes["encoder"], Is.EqualTo("prov-gigapath"));
    }

    [Test]
    public void H5RoundTripKeepsValuesAndAttributes()
    {
        var original = Sample(6, 3, integralCoords: true);
        var path = Path.Combine(_dir, "slide.h5");
        TileFeatureFile.WriteH5(path, original, new Dictionary<string, object>
        {
            ["patch_size"] = 256, ["patch_level"] = 0L, ["target_mpp"] = 0.5, ["slide_mpp"] = 0.2527, ["name"] = "slide-1",
        });
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }), "no temp file left behind");
        var read = TileFeatureFile.Read(path);
        Assert.That(read.Features, Is.EqualTo(original.Features));
        Assert.That(read.Coords, Is.EqualTo(original.Coords));
        Assert.That((read.Count, read.Dim), Is.EqualTo((6, 3)));
        Assert.That(Convert.ToInt64(read.Attributes["patch_size"]), Is.EqualTo(256));
        Assert.That(read.Attributes["patch_level"], Is.EqualTo(0L));
        Assert.That(read.Attributes["target_mpp"], Is.EqualTo(0.5));
        Assert.That(read.Attributes["slide_mpp"], Is.EqualTo(0.2527));
        Assert.That(read.Attributes["name"], Is.EqualTo("slide-1"));
    }

    [Test]
    public void SafetensorsRoundTripStoresIntegerCoordsAsInt64()
    {
        var original = Sample(4, 2, integralCoords: true);
        var path = Path.Combine(_dir, "slide.safetensors");
        TileFeatureFile.WriteSafetensors(path, original, new Dictionary<string, object> { ["patch_size"] = 256, ["target_mpp"] = 0.5 });
        using (var file = SafeTensorsFile.Open(path))
        {
            Assert.That(file.GetInfo("features").DType, Is.EqualTo(TensorDType.F32));
            Assert.That(file.GetInfo("coords").DType, Is.EqualTo(TensorDType.I64));
            Assert.That(file.Metadata["patch_size"], Is.EqualTo("256"));
        }
        var read = TileFeatureFile.Read(path);
        Assert.That(read.Features, Is.EqualTo(original.Features));
        Assert.That(read.Coords, Is.EqualTo(original.Coords));
        Assert.That(read.Attributes["target_mpp"], Is.EqualTo("0.5"));
    }

    [Test]
    public void FractionalCoordsAreKeptAsFloat64()
    {
        var original = Sample(3, 2, integralCoords: false);
        var h5 = Path.Combine(_dir, "slide.h5");
        var st = Path.Combine(_dir, "slide.safetensors");
        TileFeatureFile.WriteH5(h5, original);
        TileFeatureFile.WriteSafetensors(st, original);
        Assert.That(TileFeatureFile.Read(h5).Coords, Is.EqualTo(original.Coords));
        Assert.That(TileFeatureFile.Read(st).Coords, Is.EqualTo(original.Coords));
    }

    [Test]
    public void ReadsTheFixtureInputLayout()
    {
        var tiles = TileFeatureFile.Read(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));
        Assert.That((tiles.Count, tiles.Dim), Is.EqualTo((150, 32)));
        Assert.That(tiles.Coords, Has.Length.EqualTo(300));
        Assert.That(tiles.Attributes["reference_commit"], Is.EqualTo("09d8e87"), "safetensors metadata become attributes");
    }

    [Test]
    public void RecognisesHdf5ContentWhateverTheExtension()
    {
        var path = Path.Combine(_dir, "slide.features");
        TileFeatureFile.WriteH5(path, Sample(2, 2, true));
        Assert.That(TileFeatureFile.Read(path).Count, Is.EqualTo(2));
    }

    [Test]
    public void MissingOrMisshapenDatasetsAreNamed()
    {
        var noFeatures = Path.Combine(_dir, "a.safetensors");
        using (var scope = NewDisposeScope())
            SafeTensorsWriter.Write(noFeatures, new Dictionary<string, Tensor> { ["feats"] = zeros(2, 2) });
        Assert.That(Assert.Throws<GigaPathException>(() => TileFeatureFile.Read(noFeatures))!.Message, Does.Contain("feats"));

        var badCoords = Path.Combine(_dir, "b.safetensors");
        using (var scope = NewDisposeScope())
            SafeTensorsWriter.Write(badCoords, new Dictionary<string, Tensor> { ["features"] = zeros(2, 2), ["coords"] = zeros(2, 3) });
        Assert.That(Assert.Throws<GigaPathException>(() => TileFeatureFile.Read(badCoords))!.Message, Does.Contain("'coords' has shape [2, 3]"));

        var notH5 = Path.Combine(_dir, "c.h5");
        File.WriteAllText(notH5, "not an hdf5 file at all");
        Assert.That(Assert.Throws<GigaPathException>(() => TileFeatureFile.Read(notH5))!.Message, Does.Contain("not a readable HDF5 file"));

        Assert.That(Assert.Throws<GigaPathException>(() => TileFeatureFile.Read(Path.Combine(_dir, "none.h5")))!.Message, Does.Contain("not found"));
    }

    private static TileFeatures Sample(int n, int d, bool integralCoords)
    {
        var features = Enumerable.Range(0, n * d).Select(i => MathF.Sin(i) * 3).ToArray();
        var coords = Enumerable.Range(0, 2 * n).Select(i => integralCoords ? i * 256.0 : i * 256.0 + 0.25).ToArray();
        return new TileFeatures(features, n, d, coords, new Dictionary<string, object>(), "sample");
    }
}
