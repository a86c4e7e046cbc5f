using System.Text.Json.Nodes;
using GigaPath.Models.Tile;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Tile;

public class VisionTransformerShapeTests
{
    [Test]
    public void FullSizeModelOnMetaHasTheTimmKeysShapesAndCount()
    {
        var reference = JsonNode.Parse(File.ReadAllText(FixturePaths.Get("tile_encoder_full_keys.json")))!;
        var expected = reference["keys"]!.AsArray()
            .Select(k => (Name: k!["name"]!.GetValue<string>(), Shape: k["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray()))
            .ToList();

        // The meta device gives shapes without storage: the 4.5 GB model is described in milliseconds.
        using var model = new VisionTransformer(TileEncoderConfig.ProvGigaPath, META);
        var actual = model.state_dict().Select(kv => (Name: kv.Key, Shape: kv.Value.shape)).ToList();

        Assert.That(actual, Has.Count.EqualTo(566));
        Assert.That(actual.Select(a => a.Name), Is.EqualTo(expected.Select(e => e.Name)), "names in state-dict order");
        for (int i = 0; i < expected.Count; i++)
            Assert.That(actual[i].Shape, Is.EqualTo(expected[i].Shape), expected[i].Name);
        Assert.That(model.parameters().All(p => p.device_type == DeviceType.META), Is.True);
        long count = model.parameters().Sum(p => p.numel());
        Assert.That(count, Is.EqualTo(1_134_953_984L));
        Assert.That(count, Is.EqualTo(reference["total_parameters"]!.GetValue<long>()));
    }

    [Test]
    public void TinyModelHasTheFixtureKeys()
    {
        using var model = new VisionTransformer(TileEncoderConfig.Load(FixturePaths.Get("tile_encoder_tiny", "config.json")));
        using var st = GigaPath.Weights.SafeTensorsFile.Open(FixturePaths.Get("tile_encoder_tiny", "model.safetensors"));
        Assert.That(model.state_dict().Keys.Order(), Is.EqualTo(st.Names.Order()));
        Assert.That(model.parameters().Sum(p => p.numel()), Is.EqualTo(103_376L));
    }
}
