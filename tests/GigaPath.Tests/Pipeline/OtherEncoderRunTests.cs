using GigaPath.IO;
using GigaPath.Pipeline;
using GigaPath.Tests.Cli;
using GigaPath.Tests.Models.Tile;
using NUnit.Framework;

namespace GigaPath.Tests.Pipeline;

/// <summary>
/// <c>run</c> with a tile encoder other than Prov-GigaPath's (the UNI fixture): tile features of that encoder's width
/// at its own tile size, the encoder recorded, no slide embedding, resumable; the Prov-GigaPath slide encoder refuses
/// those features, in <c>run</c> and in <c>embed-slide</c>.
/// </summary>
public class OtherEncoderRunTests
{
    private string _dir = "";
    private string _csv = "";
    private string _uni = "";

    [SetUp]
    public void SetUp()
    {
        _dir = FixturePaths.TempDir("other-encoder-run");
        PipelineTestData.WriteCrop(Path.Combine(_dir, "s1.png"), 700, 1100);
        _csv = Path.Combine(_dir, "cohort.csv");
        File.WriteAllText(_csv, "slide_id,path,mpp\ns1,s1.png,0.5\n");
        _uni = FamilyFixtures.Publish("uni", Path.Combine(_dir, "uni"));
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private CliInvocation Run(string out_, params string[] extra) =>
        CliInvocation.Run(["run", _csv, "--tile-model", _uni, "--out", out_, "--batch-size", "4", "--progress", "lines", .. extra]);

    [Test]
    public void WritesThatEncodersTileFeaturesOnlyAndResumes()
    {
        var out_ = Path.Combine(_dir, "features_uni_v1");
        var first = Run(out_, "--encoder", "uni_v1");
        Assert.That(first.ExitCode, Is.EqualTo(0), first.ToString());
        Assert.That(first.Error, Does.Contain("uni_v1 tiles of 256 px at 0.5 µm/px, tile features only"));
        var outputs = new SlideOutputs(out_, "s1");
        Assert.That(File.Exists(outputs.H5) && File.Exists(outputs.Manifest) && File.Exists(outputs.Thumbnail), Is.True, first.ToString());
        Assert.That(File.Exists(outputs.SlideEmbedding), Is.False, "no slide encoder, no slide embedding");

        var features = TileFeatureFile.Read(outputs.H5);
        Assert.That(features.Dim, Is.EqualTo(48), "the UNI fixture's width");
        Assert.That(features.Count, Is.GreaterThan(0));
        Assert.That(features.TileEncoder, Is.EqualTo("uni_v1"));
        Assert.That(features.Attributes["tile_size"], Is.EqualTo(256L).Or.EqualTo(256));

        var manifest = SlideManifest.TryRead(outputs.Manifest)!;
        Assert.That(manifest.SlideModel, Is.Null);
        Assert.That(manifest.TileModel.Config, Does.StartWith("uni_v1:"));
        Assert.That(manifest.Outputs.Keys, Is.EquivalentTo(new[] { "h5", "thumbnail" }));

        var again = Run(out_);
        Assert.That(again.ExitCode, Is.EqualTo(0), again.ToString());
        Assert.That(again.Out, Does.Contain("skipped").Or.Contain("already complete"), "a rerun (encoder found from config.json) recomputes nothing");

        // embed-slide refuses these features (48 wide: the width check, from the file's declared shape, comes first).
        var slide = CliInvocation.Run("embed-slide", "--model", PipelineTestData.SlideModelDir, "--tiles", outputs.H5, "--out", Path.Combine(_dir, "x.safetensors"));
        Assert.That(slide.ExitCode, Is.EqualTo(2), slide.ToString());
        Assert.That(slide.Error, Does.Contain(outputs.H5));
    }

    /// <summary>
    /// Features of another encoder with the slide encoder's own width (H-optimus-0 and UNI2-h are 1536 wide, like
    /// Prov-GigaPath) pass the width check; the encoder the file names refuses them.
    /// </summary>
    [TestCase("encoder attribute")]
    [TestCase("TRIDENT folder")]
    public void EmbedSlideRefusesAnotherEncodersFeaturesOfTheSameWidth(string how)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_dir, how == "TRIDENT folder" ? "features_hoptimus0" : "plain")).FullName;
        var tiles = Path.Combine(dir, "s1.safetensors");
        using (var scope = TorchSharp.torch.NewDisposeScope())
        {
            var x = TorchSharp.torch.randn(4, PipelineTestData.SlideConfig.InputChannels);
            var c = TorchSharp.torch.tensor(new long[] { 0, 0, 256, 0, 0, 256, 256, 256 }, [4, 2]);
            var metadata = how == "encoder attribute" ? new Dictionary<string, string> { ["encoder"] = "hoptimus0" } : null;
            GigaPath.Weights.SafeTensorsWriter.Write(tiles, new Dictionary<string, TorchSharp.torch.Tensor> { ["features"] = x, ["coords"] = c }, metadata);
        }
        var slide = CliInvocation.Run("embed-slide", "--model", PipelineTestData.SlideModelDir, "--tiles", tiles, "--out", Path.Combine(_dir, "x.safetensors"));
        Assert.That(slide.ExitCode, Is.EqualTo(2), slide.ToString());
        Assert.That(slide.Error, Does.Contain(tiles).And.Contain("hoptimus0").And.Contain("Prov-GigaPath"));
        Assert.That(File.Exists(Path.Combine(_dir, "x.safetensors")), Is.False);
    }

    [Test]
    public void TheGigaPathSlideEncoderRefusesAnotherTileEncoder()
    {
        var run = Run(Path.Combine(_dir, "out"), "--slide-model", PipelineTestData.SlideModelDir);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Contain("uni_v1").And.Contain("Prov-GigaPath"));
    }
}
