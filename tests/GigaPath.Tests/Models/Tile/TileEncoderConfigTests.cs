using System.Text.Json.Nodes;
using GigaPath.Models.Tile;
using NUnit.Framework;

namespace GigaPath.Tests.Models.Tile;

public class TileEncoderConfigTests
{
    private static string TinyConfigPath => FixturePaths.Get("tile_encoder_tiny", "config.json");

    private static JsonObject TinyJson() => (JsonObject)JsonNode.Parse(File.ReadAllText(TinyConfigPath))!;

    [Test]
    public void ReadsTheTinyFixtureConfig()
    {
        var cfg = TileEncoderConfig.Load(TinyConfigPath);
        Assert.Multiple(() =>
        {
            Assert.That(cfg.Architecture, Is.EqualTo("vit_giant_patch14_dinov2"));
            Assert.That((cfg.ImageSize, cfg.PatchSize, cfg.EmbedDim, cfg.Depth, cfg.HeadCount), Is.EqualTo((224, 16, 48, 2, 4)));
            Assert.That(cfg.MlpRatio, Is.EqualTo(5.33334));
            Assert.That(cfg.LayerScaleInit, Is.EqualTo(1e-5));
            Assert.That((cfg.MlpPackedHiddenDim, cfg.MlpHiddenDim, cfg.HeadDim, cfg.SequenceLength), Is.EqualTo((256, 128, 12, 197)));
            Assert.That(cfg.Mean, Is.EqualTo(new[] { 0.485, 0.456, 0.406 }));
            Assert.That(cfg.Std, Is.EqualTo(new[] { 0.229, 0.224, 0.225 }));
            Assert.That(cfg.SourceName, Is.EqualTo(TinyConfigPath));
        });
    }

    [Test]
    public void ProvGigaPathMatchesThePublishedModelArgs()
    {
        var keys = JsonNode.Parse(File.ReadAllText(FixturePaths.Get("tile_encoder_full_keys.json")))!;
        var args = keys["model_args"]!;
        var cfg = TileEncoderConfig.ProvGigaPath;
        Assert.Multiple(() =>
        {
            Assert.That(cfg.Architecture, Is.EqualTo(keys["architecture"]!.GetValue<string>()));
            Assert.That(cfg.ImageSize, Is.EqualTo(args["img_size"]!.GetValue<int>()));
            Assert.That(cfg.PatchSize, Is.EqualTo(args["patch_size"]!.GetValue<int>()));
            Assert.That(cfg.EmbedDim, Is.EqualTo(args["embed_dim"]!.GetValue<int>()));
            Assert.That(cfg.Depth, Is.EqualTo(args["depth"]!.GetValue<int>()));
            Assert.That(cfg.HeadCount, Is.EqualTo(args["num_heads"]!.GetValue<int>()));
            Assert.That(cfg.MlpRatio, Is.EqualTo(args["mlp_ratio"]!.GetValue<double>()));
            Assert.That(cfg.LayerScaleInit, Is.EqualTo(args["init_values"]!.GetValue<double>()));
            Assert.That(cfg.MlpPackedHiddenDim, Is.EqualTo(keys["derived"]!["mlp_fc1_out"]!.GetValue<int>()));
            Assert.That(cfg.MlpHiddenDim, Is.EqualTo(keys["derived"]!["mlp_fc2_in"]!.GetValue<int>()));
            Assert.That(cfg.SequenceLength, Is.EqualTo(keys["derived"]!["seq_len"]!.GetValue<int>()));
        });
    }

    [Test]
    public void ToJsonRoundTrips()
    {
        var cfg = TileEncoderConfig.Load(TinyConfigPath);
        var again = TileEncoderConfig.FromJson(cfg.ToJson(), "round-trip");
        Assert.That(again, Is.EqualTo(cfg));
        Assert.That(TileEncoderConfig.FromJson(TileEncoderConfig.ProvGigaPath.ToJson(), "x"), Is.EqualTo(TileEncoderConfig.ProvGigaPath));
    }

    [Test]
    public void AcceptsAPretrainedTagAndInertModelArgs()
    {
        var json = TinyJson();
        json["architecture"] = "vit_giant_patch14_dinov2.lvd142m";
        json["model_args"]!["drop_path_rate"] = 0.1;
        json["model_args"]!["class_token"] = true;
        json["model_args"]!["reg_tokens"] = 0;
        Assert.That(TileEncoderConfig.FromJson(json.ToJsonString(), "cfg").EmbedDim, Is.EqualTo(48));
    }

    // Each case edits the valid tiny config into one that must be refused; the message must name the field.
    private static IEnumerable<TestCaseData> BadConfigs()
    {
        TestCaseData Case(string name, string field, Action<JsonObject> edit) => new TestCaseData(edit, field).SetName($"Rejects_{name}");
        yield return Case("UnknownArchitecture", "architecture", j => j["architecture"] = "vit_large_patch14_dinov2");
        yield return Case("MissingArchitecture", "architecture", j => j.Remove("architecture"));
        yield return Case("HeadsNotDividingDim", "model_args.embed_dim", j => j["model_args"]!["num_heads"] = 5);
        yield return Case("NumFeaturesMismatch", "num_features", j => j["num_features"] = 64);
        yield return Case("OddPackedMlpWidth", "model_args.mlp_ratio", j => { j["model_args"]!["embed_dim"] = 64; j["num_features"] = 64; });
        yield return Case("ImgNotDivisibleByPatch", "model_args.img_size", j => j["model_args"]!["patch_size"] = 15);
        yield return Case("MissingPretrainedCfg", "pretrained_cfg", j => j.Remove("pretrained_cfg"));
        yield return Case("AvgPooling", "global_pool", j => j["global_pool"] = "avg");
        yield return Case("RegisterTokens", "model_args.reg_tokens", j => j["model_args"]!["reg_tokens"] = 4);
        yield return Case("NoClassToken", "model_args.class_token", j => j["model_args"]!["class_token"] = false);
        yield return Case("UnknownModelArg", "model_args.mlp_layer", j => j["model_args"]!["mlp_layer"] = "Mlp");
        yield return Case("NullInitValues", "model_args.init_values", j => j["model_args"]!["init_values"] = null);
        yield return Case("StringPatchSize", "model_args.patch_size", j => j["model_args"]!["patch_size"] = "16");
        yield return Case("Classifier", "num_classes", j => j["num_classes"] = 2);
        yield return Case("InputSizeDisagrees", "pretrained_cfg.input_size", j => j["pretrained_cfg"]!["input_size"] = new JsonArray(3, 256, 256));
        yield return Case("GrayscaleInput", "model_args.in_chans", j => { j["model_args"]!["in_chans"] = 1; j["pretrained_cfg"]!.AsObject().Remove("input_size"); });
        yield return Case("ShortMean", "pretrained_cfg.mean", j => j["pretrained_cfg"]!["mean"] = new JsonArray(0.5, 0.5));
    }

    /// <summary>
    /// A field config.json leaves out takes the timm entrypoint's default, as timm builds it (published configs rely
    /// on that: Virchow's gives no embed_dim or depth).
    /// </summary>
    [Test]
    public void MissingFieldsTakeTheTimmArchitectureDefaults()
    {
        var json = TinyJson();
        ((JsonObject)json["model_args"]!).Remove("depth");
        ((JsonObject)json["model_args"]!).Remove("mlp_ratio");
        var config = TileEncoderConfig.FromJson(json.ToJsonString(), "cfg");
        Assert.That(config.Depth, Is.EqualTo(40), "vit_giant_patch14_dinov2's depth");
        Assert.That(config.MlpRatio, Is.EqualTo(2.66667 * 2), "vit_giant_patch14_dinov2's SwiGLU ratio");
    }

    [TestCaseSource(nameof(BadConfigs))]
    public void RejectsInconsistentConfig(Action<JsonObject> edit, string field)
    {
        var json = TinyJson();
        edit(json);
        var e = Assert.Throws<ModelConfigException>(() => TileEncoderConfig.FromJson(json.ToJsonString(), "bad/config.json"))!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Message, Does.StartWith("bad/config.json: "));
        Assert.That(e.Message, Does.Contain(field));
        Assert.That((e.ConfigSource, e.Field), Is.EqualTo(("bad/config.json", field)), "the source and the field, for callers catching by type");
    }

    [Test]
    public void MissingPretrainedCfgExplainsTheTimmPitfall()
    {
        var json = TinyJson();
        json.Remove("pretrained_cfg");
        var e = Assert.Throws<ModelConfigException>(() => TileEncoderConfig.FromJson(json.ToJsonString(), "cfg.json"))!;
        Assert.That(e.Message, Does.Contain("legacy").And.Contain("patch 14"));
    }

    [Test]
    public void RejectsInvalidJsonNamingTheFile()
    {
        var e = Assert.Throws<ModelConfigException>(() => TileEncoderConfig.FromJson("{\"architecture\": ", "x/config.json"))!;
        Assert.That(e.Message, Does.StartWith("x/config.json: not valid JSON"));
    }
}
