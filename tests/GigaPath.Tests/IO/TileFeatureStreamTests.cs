using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;

namespace GigaPath.Tests.IO;

/// <summary>
/// Tile-feature files read from streams and safetensors written to streams, in memory: the same values as the path
/// API, the same budget, and errors that name the stream's given name.
/// </summary>
public class TileFeatureStreamTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("gigapath-streams-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private static TileFeatures Tiles() => new(
        Enumerable.Range(0, 3 * 4).Select(i => i * 0.25f - 1).ToArray(), 3, 4, [0, 0, 256, 0, 512, 256],
        new Dictionary<string, object> { ["patch_size_level0"] = 256L });

    /// <summary>A stream that can only be read forwards, like a request body.</summary>
    private sealed class ForwardOnly(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }

    [TestCase(".safetensors")]
    [TestCase(".h5")]
    public async Task StreamsGiveWhatThePathGives(string extension)
    {
        var path = Path.Combine(_dir, "slide" + extension);
        if (extension == ".h5") TileFeatureFile.WriteH5(path, Tiles());
        else TileFeatureFile.WriteSafetensors(path, Tiles());
        var fromPath = TileFeatureFile.Read(path);
        var bytes = File.ReadAllBytes(path);

        var fromMemory = TileFeatureFile.Read(new MemoryStream(bytes), "upload");
        var fromForwardOnly = TileFeatureFile.Read(new ForwardOnly(bytes), "upload");
        await using var file = File.OpenRead(path);
        var fromAsync = await TileFeatureFile.ReadAsync(file, "upload");
        foreach (var tiles in new[] { fromMemory, fromForwardOnly, fromAsync })
        {
            Assert.That(tiles.Features, Is.EqualTo(fromPath.Features));
            Assert.That(tiles.Coords, Is.EqualTo(fromPath.Coords));
            Assert.That((tiles.Count, tiles.Dim), Is.EqualTo((3, 4)));
            Assert.That(tiles.Source, Is.EqualTo("upload"));
            Assert.That(Convert.ToInt64(tiles.Attributes["patch_size_level0"]), Is.EqualTo(256));
        }
    }

    [Test]
    public void ErrorsAndBudgetsNameTheStream()
    {
        var path = Path.Combine(_dir, "slide.safetensors");
        TileFeatureFile.WriteSafetensors(path, Tiles());
        var bytes = File.ReadAllBytes(path);

        var over = Assert.Throws<BudgetExceededException>(() =>
            TileFeatureFile.Read(new MemoryStream(bytes), "request body", new TileFeatureBudget(2)));
        Assert.That(over!.Message, Does.StartWith("request body: 'features' has shape [3, 4]: 3 tiles, above the limit of 2"));
        var width = Assert.Throws<GigaPathException>(() =>
            TileFeatureFile.Read(new MemoryStream(bytes), "request body", new TileFeatureBudget(10, ExpectedDim: 8)));
        Assert.That(width!.Message, Does.StartWith("request body: 'features' has shape [3, 4]"));

        var truncated = Assert.Throws<FeatureFileFormatException>(() => TileFeatureFile.Read(new MemoryStream(bytes[..(bytes.Length - 5)]), "upload 7"));
        Assert.That(truncated!.Message, Does.StartWith("upload 7: tensor"));
        var h5 = Path.Combine(_dir, "slide.h5");
        TileFeatureFile.WriteH5(h5, Tiles());
        var cut = File.ReadAllBytes(h5)[..200];
        Assert.That(Assert.Throws<GigaPathException>(() => TileFeatureFile.Read(new MemoryStream(cut), "upload 8"))!.Message, Does.StartWith("upload 8: "));
    }

    [Test]
    public void TorchSaveFeaturesAreReadFromAStreamWithoutClosingIt()
    {
        var values = Enumerable.Range(0, 6).Select(i => (float)i).ToArray();
        var stream = new MemoryStream(TorchSaveWriter.Serialize(values, [2, 3]));
        var tiles = TileFeatureFile.Read(stream, "pt upload");
        Assert.That(tiles.Features, Is.EqualTo(values));
        Assert.That((tiles.Count, tiles.Dim, tiles.Coords), Is.EqualTo((2, 3, (double[]?)null)));
        Assert.That(stream.CanRead, Is.True, "the caller's stream stays open");
    }

    [Test]
    public void SafeTensorsWrittenToAStreamAreTheFileBytes()
    {
        using var a = torch.arange(6, dtype: torch.ScalarType.Float32).reshape(2, 3);
        using var b = torch.tensor(new long[] { 7, 8 });
        var tensors = new Dictionary<string, torch.Tensor> { ["a"] = a, ["b"] = b };
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        var path = Path.Combine(_dir, "out.safetensors");
        SafeTensorsWriter.Write(path, tensors, metadata);

        using var stream = new MemoryStream();
        stream.WriteByte(42); // written from the stream's position on
        SafeTensorsWriter.WriteTo(stream, tensors, metadata);
        Assert.That(stream.ToArray()[1..], Is.EqualTo(File.ReadAllBytes(path)));
        Assert.That(stream.CanWrite, Is.True, "left open");
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.WriteTo(new MemoryStream([], writable: false), tensors));
    }
}
