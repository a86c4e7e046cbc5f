using GigaPath.Runtime;
using NUnit.Framework;

namespace GigaPath.Tests.Runtime;

public class ProvenanceTests
{
    [Test]
    public void EveryWriterUsesTheSameKeys()
    {
        var metadata = new Provenance { TileModelSha256 = "t", SlideModelSha256 = "s" }.AddTo(new Dictionary<string, string> { ["format"] = "pt" });
        Assert.That(metadata, Is.EquivalentTo(new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["engine"] = EngineInfo.Name,
            ["engine_version"] = EngineInfo.Version,
            ["torchsharp_version"] = EngineInfo.TorchSharpVersion,
            ["tile_model_sha256"] = "t",
            ["slide_model_sha256"] = "s",
        }));
        Assert.That(Provenance.Read(metadata), Is.EqualTo(new Provenance { TileModelSha256 = "t", SlideModelSha256 = "s" }));
    }

    [Test]
    public void FilesOfEarlierVersionsAreStillRead()
    {
        var embedTiles = Provenance.Read(new Dictionary<string, string> { ["engine"] = "GigaPath.Native", ["engine_version"] = "0.1.0", ["model_sha256"] = "t" })!;
        Assert.That((embedTiles.EngineVersion, embedTiles.TileModelSha256), Is.EqualTo(("0.1.0", "t")));
        var embedSlide = Provenance.Read(new Dictionary<string, string> { ["engine"] = "GigaPath.Native", ["engine_version"] = "0.1.0", ["weights_sha256"] = "s" })!;
        Assert.That(embedSlide.SlideModelSha256, Is.EqualTo("s"));
        var h5 = Provenance.Read(new Dictionary<string, string> { ["engine"] = "GigaPath.Native 0.1.0", ["tile_model_sha256"] = "t" })!;
        Assert.That((h5.Engine, h5.EngineVersion), Is.EqualTo(("GigaPath.Native", "0.1.0")));
        Assert.That(Provenance.Read(new Dictionary<string, string> { ["format"] = "pt" }), Is.Null);
    }
}
