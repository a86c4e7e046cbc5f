using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Weights;

public class CheckpointReadingTests
{
    [Test]
    public void PthNestedUnderModelEqualsSafetensors()
    {
        using var st = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "model.safetensors"));
        using var pth = PyTorchCheckpoint.Open(FixturePaths.Get("slide_encoder_tiny", "model.pth"));
        Assert.That(pth.NestedKey, Is.EqualTo("model"));
        Assert.That(pth.Names.OrderBy(n => n), Is.EqualTo(st.Names.OrderBy(n => n)));
        foreach (var name in st.Names)
        {
            using var scope = NewDisposeScope();
            var a = st.Load(name);
            var b = pth.Load(name);
            Assert.That(b.shape, Is.EqualTo(a.shape), name);
            Assert.That(a.equal(b).all().item<bool>(), Is.True, name);
        }
    }

    [Test]
    public void SafetensorsRoundTripWithMetadataAndDtypes()
    {
        var dir = FixturePaths.TempDir();
        try
        {
            var path = Path.Combine(dir, "t.safetensors");
            using var scope = NewDisposeScope();
            var f = randn(3, 5);
            var l = arange(6, dtype: ScalarType.Int64).reshape(2, 3);
            var u = tensor(new byte[] { 1, 2, 250 });
            SafeTensorsWriter.Write(path, new Dictionary<string, Tensor> { ["f"] = f, ["l"] = l, ["u"] = u },
                new Dictionary<string, string> { ["format"] = "pt" });
            Assert.That(Directory.GetFiles(dir), Has.Length.EqualTo(1), "no temp file left behind");
            using var file = SafeTensorsFile.Open(path);
            Assert.That(file.Metadata["format"], Is.EqualTo("pt"));
            Assert.That(file.Load("f").equal(f).all().item<bool>(), Is.True);
            Assert.That(file.Load("l").equal(l).all().item<bool>(), Is.True);
            Assert.That(file.Load("u").equal(u).all().item<bool>(), Is.True);
            Assert.That(file.Load("f", ScalarType.BFloat16).dtype, Is.EqualTo(ScalarType.BFloat16));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
