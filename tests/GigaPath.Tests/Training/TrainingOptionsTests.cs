using GigaPath.Models.Heads;
using GigaPath.Training;
using NUnit.Framework;

namespace GigaPath.Tests.Training;

public class TrainingOptionsTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("gigapath-options");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void ScheduleWarmsUpLinearlyThenFollowsAHalfCosine()
    {
        // the reference's adjust_learning_rate with lr 1e-3, min 1e-6, 1 warm-up epoch of 5
        Assert.That(LearningRateSchedule.At(0, 1e-3, 1e-6, 1, 5, "cosine"), Is.EqualTo(0));
        Assert.That(LearningRateSchedule.At(0.5, 1e-3, 1e-6, 1, 5, "cosine"), Is.EqualTo(5e-4).Within(1e-15));
        Assert.That(LearningRateSchedule.At(1, 1e-3, 1e-6, 1, 5, "cosine"), Is.EqualTo(1e-3).Within(1e-15));
        Assert.That(LearningRateSchedule.At(3, 1e-3, 1e-6, 1, 5, "cosine"), Is.EqualTo(1e-6 + (1e-3 - 1e-6) * 0.5).Within(1e-15));
        Assert.That(LearningRateSchedule.At(5, 1e-3, 1e-6, 1, 5, "cosine"), Is.EqualTo(1e-6).Within(1e-15));
        Assert.That(LearningRateSchedule.At(0.2, 1e-3, 1e-6, 1, 5, "fixed"), Is.EqualTo(1e-3));
    }

    [Test]
    public void LayerDecayFollowsTheReferenceLayerIds()
    {
        const int depth = 12;
        double Scale(string name) => SlideClassificationHead.LayerScale(name, depth, 0.95);
        Assert.That(Scale("slide_encoder.cls_token"), Is.EqualTo(Math.Pow(0.95, 13)).Within(1e-15));
        Assert.That(Scale("slide_encoder.encoder.layers.0.ffn.fc1.weight"), Is.EqualTo(Math.Pow(0.95, 12)).Within(1e-15));
        Assert.That(Scale("slide_encoder.encoder.layers.11.self_attn.q_proj.bias"), Is.EqualTo(0.95).Within(1e-15));
        Assert.That(Scale("slide_encoder.norm.weight"), Is.EqualTo(1.0));
        Assert.That(Scale("classifier.0.weight"), Is.EqualTo(1.0));
        // reference quirk: 'patch_embed' is tested with startswith on a name that begins with 'slide_encoder.'
        Assert.That(Scale("slide_encoder.patch_embed.proj.weight"), Is.EqualTo(1.0));
    }

    [Test]
    public void FeatLayerIsAListNotARange()
    {
        Assert.That(FeatLayers.Parse("5-11"), Is.EqualTo(new[] { 5, 11 }));
        Assert.That(FeatLayers.Parse("11"), Is.EqualTo(new[] { 11 }));
        Assert.That(FeatLayers.Parse("0-6-12", depth: 12), Is.EqualTo(new[] { 0, 6, 12 }));
        Assert.That(Assert.Throws<GigaPathException>(() => FeatLayers.Parse("13", depth: 12))!.Message, Does.Contain("valid indices 0..12"));
        Assert.That(Assert.Throws<GigaPathException>(() => FeatLayers.Parse("5--11"))!.Message, Does.Contain("not a layer index"));
    }

    [Test]
    public void YamlSubsetAndJsonGiveTheSameOptions()
    {
        var yaml = Path.Combine(_dir, "task.yaml");
        File.WriteAllText(yaml, "# PANDA-like\nname: panda  # task name\nepochs: 7\nlr: '3e-4'\nclasses: [0, 1, 2]\nshuffle_tiles: true\nfeat_layer: \"5-11\"\n");
        var json = Path.Combine(_dir, "task.json");
        File.WriteAllText(json, "{\"name\": \"panda\", \"epochs\": 7, \"lr\": 3e-4, \"classes\": [\"0\", \"1\", \"2\"], \"shuffle_tiles\": true, \"feat_layer\": \"5-11\"}");
        foreach (var path in new[] { yaml, json })
        {
            var o = new TrainingOptions(HeadKind.Slide);
            foreach (var (k, v, where) in TaskConfigFile.Read(path)) o.Set(k, v, where);
            Assert.That((o.TaskName, o.Epochs, o.EffectiveLr, o.ShuffleTiles, o.FeatLayer), Is.EqualTo(("panda", 7, 3e-4, true, "5-11")), path);
            Assert.That(o.Classes, Is.EqualTo(new[] { "0", "1", "2" }), path);
        }
    }

    [Test]
    public void NestedYamlIsRefusedWithItsLine()
    {
        var yaml = Path.Combine(_dir, "panda.yaml");
        File.WriteAllText(yaml, "name: panda\nlabel_dict:\n  0: 0\n");
        var e = Assert.Throws<GigaPathException>(() => TaskConfigFile.Read(yaml));
        Assert.That(e!.Message, Does.Contain("panda.yaml:2"));
    }

    [Test]
    public void BadValuesNameTheirSource()
    {
        var o = new TrainingOptions(HeadKind.Abmil);
        Assert.That(Assert.Throws<GigaPathException>(() => o.Set("epochs", "many", "task.yaml:3"))!.Message, Is.EqualTo("task.yaml:3: 'many' is not an integer"));
        Assert.That(Assert.Throws<GigaPathException>(() => o.Set("dropout", "1.5", "--set dropout"))!.Message, Does.Contain("--set dropout"));
        Assert.That(Assert.Throws<GigaPathException>(() => o.Set("class_weights", "inverse", "x"))!.Message, Does.Contain("balanced, none"));
    }

    [Test]
    public void SlideDefaultsAreTheReferencePandaRecipe()
    {
        var o = new TrainingOptions(HeadKind.Slide);
        Assert.That((o.Epochs, o.Accumulate, o.WeightDecay, o.LayerDecay, o.Dropout, o.FeatLayer, o.ShuffleTiles), Is.EqualTo((5, 32, 0.05, 0.95, 0.1, "11", true)));
        Assert.That(o.EffectiveLr, Is.EqualTo(2e-3 * 32 / 256));
    }
}
