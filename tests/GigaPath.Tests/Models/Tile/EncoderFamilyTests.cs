using System.Text.Json.Nodes;
using GigaPath.Imaging;
using GigaPath.Models;
using GigaPath.Models.Tile;
using GigaPath.Tests.Cli;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Tile;

/// <summary>
/// The other ViT pathology encoders (Fixtures/families: H-optimus-0, Virchow2, UNI2-h, UNI built through timm as their
/// cards build them, at small size) through the one VisionTransformer: embeddings and tokens from pixels, the model's
/// own transform from PNGs, the CLI, and the full-size key lists. Every model is loaded from a copy of its folder
/// whose config.json has the fixture block removed, as a downloaded Hugging Face folder would be.
/// </summary>
public class EncoderFamilyTests
{
    /// <summary>Fixture folder → TRIDENT encoder name.</summary>
    public static readonly object[] Families =
    [
        new object[] { "hoptimus0", "hoptimus0" },
        new object[] { "virchow2", "virchow2" },
        new object[] { "uni2h", "uni_v2" },
        new object[] { "uni", "uni_v1" },
    ];

    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("families");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private static string FamilyPath(string family, params string[] parts) => FamilyFixtures.Path(family, parts);

    private string PublishedFolder(string family, Action<JsonObject>? edit = null) =>
        FamilyFixtures.Publish(family, Path.Combine(_dir, family), edit);

    private static string[] Images(string family) => FamilyFixtures.Images(family);

    [TestCaseSource(nameof(Families))]
    public void PixelsGiveTheEmbeddingAndTokensOfTimm(string family, string encoderName)
    {
        using var scope = NewDisposeScope();
        using var encoder = TileEncoder.Load(PublishedFolder(family), new TileEncoderOptions { Encoder = encoderName });
        using var input = SafeTensorsFile.Open(FamilyPath(family, "input.safetensors"));
        using var expected = SafeTensorsFile.Open(FamilyPath(family, "expected.safetensors"));
        var pixels = input.Load("pixel_values");

        using var full = encoder.Embed(pixels, returnTokens: true);
        Parity.Check($"{family} embedding", TinyTileFixture.MaxAbsDiff(full.Embeddings, expected.Load("embedding")));
        Parity.Check($"{family} tokens", TinyTileFixture.MaxAbsDiff(full.Tokens!, expected.Load("tokens")));
        // Embeddings alone take the model's shortest path (the class token's last block alone where the recipe allows).
        using var only = encoder.Embed(pixels);
        Parity.Check($"{family} embedding (embeddings only)", TinyTileFixture.MaxAbsDiff(only.Embeddings, expected.Load("embedding")));
        Assert.That(encoder.Config.Encoder, Is.EqualTo(encoderName));
        Assert.That(full.Embeddings.shape[1], Is.EqualTo(encoder.Config.OutputDim));
    }

    [TestCaseSource(nameof(Families))]
    public void PngsGoThroughTheModelsOwnTransform(string family, string encoderName)
    {
        using var scope = NewDisposeScope();
        using var encoder = TileEncoder.Load(PublishedFolder(family), new TileEncoderOptions { Encoder = encoderName });
        using var expected = SafeTensorsFile.Open(FamilyPath(family, "expected.safetensors"));
        var images = Images(family);
        Assert.That(images, Has.Length.EqualTo(2));

        // The transform itself: timm's create_transform from pretrained_cfg (short side to floor(224 / crop_pct) with
        // the config's interpolation, centre crop, normalise), bit for bit.
        using var pixels = encoder.Preprocessor.PreprocessFiles(images, 0, images.Length);
        double pixelDiff = TinyTileFixture.MaxAbsDiff(pixels, expected.Load("image_pixel_values"));
        TestContext.Out.WriteLine($"{family} ({encoder.Preprocessor.Interpolation}, resize {encoder.Preprocessor.ResizeSize}): pixel max |diff| {pixelDiff:E2}");
        Assert.That(pixelDiff, Is.EqualTo(0), "preprocessing must be bit-exact with timm's eval transform on Pillow");

        using var result = encoder.EmbedImages(images, batchSize: 1);
        Parity.Check($"{family} image_embedding", TinyTileFixture.MaxAbsDiff(result.Embeddings, expected.Load("image_embedding")));
    }

    [TestCaseSource(nameof(Families))]
    public void EmbedTilesCommandWorksForEachEncoder(string family, string encoderName)
    {
        var output = Path.Combine(_dir, $"{family}.safetensors");
        var run = CliInvocation.Run(["embed-tiles", "--encoder", encoderName, "--model", PublishedFolder(family), "--out", output, "--tokens", .. Images(family)]);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.ToString());
        using var scope = NewDisposeScope();
        using var result = SafeTensorsFile.Open(output);
        using var expected = SafeTensorsFile.Open(FamilyPath(family, "expected.safetensors"));
        Parity.Check($"{family} embed-tiles --encoder {encoderName}", TinyTileFixture.MaxAbsDiff(result.Load("embeddings"), expected.Load("image_embedding")));
        Assert.That(result.Metadata["encoder"], Is.EqualTo(encoderName));
        var config = TileEncoderConfig.Load(FamilyPath(family, "config.json"), encoderName);
        Assert.That(result.Load("tokens").shape, Is.EqualTo(new long[] { 2, config.SequenceLength, config.EmbedDim }));
    }

    [Test]
    public void BatchOfTwoEqualsOneAtATimeForThePooledRecipe()
    {
        using var scope = NewDisposeScope();
        using var encoder = TileEncoder.Load(PublishedFolder("virchow2"));
        using var input = SafeTensorsFile.Open(FamilyPath("virchow2", "input.safetensors"));
        var pixels = input.Load("pixel_values");
        using var both = encoder.Embed(pixels);
        for (int i = 0; i < 2; i++)
        {
            using var one = encoder.Embed(pixels.narrow(0, i, 1));
            double diff = TinyTileFixture.MaxAbsDiff(one.Embeddings, both.Embeddings.narrow(0, i, 1));
            TestContext.Out.WriteLine($"virchow2 tile {i}: batch-of-2 vs alone max abs diff {diff:E2}");
            Assert.That(diff, Is.LessThanOrEqualTo(1e-6));
        }
    }

    [TestCase("virchow2", "virchow2")]
    [TestCase("uni2h", "uni_v2")]
    [TestCase("uni", "uni_v1")]
    public void AnUnambiguousConfigNeedsNoName(string family, string encoderName)
    {
        var config = TileEncoderConfig.Load(Path.Combine(PublishedFolder(family), "config.json"));
        Assert.That(config.Encoder, Is.EqualTo(encoderName));
    }

    [Test]
    public void HOptimusZeroAndOneShareALayoutSoTheNameIsAsked()
    {
        var e = Assert.Throws<ModelConfigException>(() => TileEncoder.Load(PublishedFolder("hoptimus0")))!;
        Assert.That(e.Message, Does.Contain("config.json: architecture").And.Contain("hoptimus0 and hoptimus1"));
    }

    private static IEnumerable<TestCaseData> Misfits()
    {
        TestCaseData Case(string name, string family, string encoder, string field, Action<JsonObject>? edit = null) =>
            new TestCaseData(family, encoder, field, edit).SetName($"RefusesAFolderThatDoesNotFit_{name}");
        yield return Case("WrongArchitecture", "virchow2", "uni_v2", "architecture");
        yield return Case("RegisterCount", "virchow2", "virchow2", "model_args.reg_tokens", j => j["model_args"]!["reg_tokens"] = 2);
        yield return Case("NoEmbedClass", "uni2h", "uni_v2", "model_args.no_embed_class", j => j["model_args"]!["no_embed_class"] = false);
        yield return Case("PatchSize", "uni", "uni_v1", "model_args.patch_size", j => j["model_args"]!["patch_size"] = 14);
        yield return Case("VirchowPooling", "virchow2", "virchow2", "global_pool", j => { j["global_pool"] = "token"; ((JsonObject)j["model_args"]!).Remove("global_pool"); });
        yield return Case("MlpRatio", "virchow2", "virchow2", "model_args.mlp_ratio", j => j["model_args"]!["mlp_ratio"] = 4.0);
        yield return Case("Interpolation", "uni", "uni_v1", "pretrained_cfg.interpolation", j => j["pretrained_cfg"]!["interpolation"] = "lanczos");
    }

    [TestCaseSource(nameof(Misfits))]
    public void RefusesAFolderThatDoesNotFit(string family, string encoder, string field, Action<JsonObject>? edit)
    {
        var dir = PublishedFolder(family, edit);
        var e = Assert.Throws<ModelConfigException>(() => TileEncoder.Load(dir, new TileEncoderOptions { Encoder = encoder }))!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Message, Does.Contain(field));
        Assert.That(e.Field, Is.EqualTo(field));
        Assert.That(e.ConfigSource, Does.EndWith("config.json"));
    }

    [Test]
    public void AnUnknownEncoderNameListsTheNames()
    {
        var e = Assert.Throws<GigaPathException>(() => TileEncoder.Load(PublishedFolder("uni"), new TileEncoderOptions { Encoder = "uni_v3" }))!;
        Assert.That(e.Message, Does.Contain("uni_v3").And.Contain(TileEncoderKind.Names));
    }

    /// <summary>Fixture key list name → TRIDENT encoder name (virchow has no small fixture, only its key list).</summary>
    [TestCase("hoptimus0", "hoptimus0", 1_134_774_272L)]
    [TestCase("virchow2", "virchow2", 631_239_424L)]
    [TestCase("virchow", "virchow", 631_229_184L)]
    [TestCase("uni2h", "uni_v2", 681_394_176L)]
    [TestCase("uni", "uni_v1", 303_350_784L)]
    public void FullSizeDescriptionEqualsTimmsKeyList(string listName, string encoderName, long parameters)
    {
        var lists = JsonNode.Parse(File.ReadAllText(FixturePaths.Get("families", "full_size_keys.json")))!;
        var expected = lists[listName]!;
        var description = TileEncoder.Describe(TileEncoderKind.Get(encoderName).GetPublishedConfig());
        var keys = expected["keys"]!.AsArray()
            .Select(k => (Name: k![0]!.GetValue<string>(), Shape: k[1]!.AsArray().Select(v => v!.GetValue<long>()).ToArray()))
            .ToList();
        Assert.That(description.Parameters.Select(p => p.Name), Is.EqualTo(keys.Select(k => k.Name)), "names in state-dict order");
        for (int i = 0; i < keys.Count; i++)
            Assert.That(description.Parameters[i].Shape, Is.EqualTo(keys[i].Shape), keys[i].Name);
        Assert.That(description.ParameterCount, Is.EqualTo(parameters).And.EqualTo(expected["parameters"]!.GetValue<long>()));
    }

    [Test]
    public void EveryNamedEncoderHasAPublishedConfigThatRoundTrips()
    {
        foreach (var kind in TileEncoderKind.All)
        {
            var config = kind.GetPublishedConfig();
            Assert.That(config.Encoder, Is.EqualTo(kind.Name));
            Assert.That(config.ImageSize, Is.EqualTo(224), kind.Name);
            Assert.That(config.PatchSize, Is.EqualTo(kind.PatchSize), kind.Name);
            var back = TileEncoderConfig.FromJson(config.ToJson(), "round trip", kind.Name);
            Assert.That(back, Is.EqualTo(config), kind.Name);
        }
        Assert.That(TileEncoderKind.Get("gigapath").GetPublishedConfig(), Is.EqualTo(TileEncoderConfig.ProvGigaPath),
            "the named encoder's published config and the library's ProvGigaPath are one model");
        Assert.That(TileEncoderKind.Get("gigapath").GetPublishedConfig().CreatePreprocessor().ResizeSize, Is.EqualTo(256), "Prov-GigaPath's code resizes to 256");
        Assert.That(TileEncoderKind.Get("uni_v1").GetPublishedConfig().CreatePreprocessor().Interpolation, Is.EqualTo(ResizeInterpolation.Bilinear));
        Assert.That(TileEncoderKind.Get("virchow2").GetPublishedConfig().OutputDim, Is.EqualTo(2560));
    }
}
