using GigaPath.Models.Heads;
using GigaPath.Imaging;
using GigaPath.Models.Slide;
using GigaPath.Models.Tile;
using GigaPath.Tests.Training;
using GigaPath.Training;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Cli;

/// <summary>
/// Issue 14, case 5: NaN or infinity coming out of a model (tile embeddings, slide embeddings, head outputs) is an
/// error naming the tile or image and pointing at the weights; a NaN in the input pixels is an input error. No output
/// file is written.
/// </summary>
public class NonFiniteOutputTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("non-finite");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private string Out => Path.Combine(_dir, "out.safetensors");

    private static string TinyTile => Path.GetDirectoryName(FixturePaths.Get("tile_encoder_tiny", "config.json"))!;

    private static string TinySlide => Path.GetDirectoryName(FixturePaths.Get("slide_encoder_tiny", "config.json"))!;

    private string WriteImage(string name, byte value)
    {
        var pixels = Enumerable.Range(0, 64 * 64 * 3).Select(i => (byte)(value + i % 7)).ToArray();
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, ImageDecoder.EncodePng(new RgbImage(64, 64, pixels)));
        return path;
    }

    [Test]
    public void EmbedTilesWithNaNWeightsFailsNamingTheImageAndTheWeights()
    {
        var nan = PoisonedWeights.Copy(TinyTile, Path.Combine(_dir, "nan-model"), "patch_embed.proj.bias");
        var a = WriteImage("a.png", 90);
        WriteImage("b.png", 150);
        var run = CliInvocation.Run("embed-tiles", "--model", nan, "--out", Out, a, Path.Combine(_dir, "b.png"));
        TestContext.Out.WriteLine(run.Error);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.StartWith("error: " + a + ": the tile encoder's embedding holds NaN or infinity"));
        Assert.That(run.Error, Does.Contain("weights (").And.Contain("nan-model"));
        Assert.That(File.Exists(Out), Is.False, "no file of NaN embeddings");
    }

    [Test]
    public void OneNaNInThePixelsIsAnInputErrorNamingTheTile()
    {
        var pixels = Path.Combine(_dir, "pixels.safetensors");
        using (var scope = NewDisposeScope())
        using (var input = SafeTensorsFile.Open(FixturePaths.Get("tile_encoder_tiny", "input.safetensors")))
        {
            var values = input.Load("pixel_values");
            values[1, 2, 100, 7] = tensor(float.NaN);
            SafeTensorsWriter.Write(pixels, new Dictionary<string, Tensor> { ["pixel_values"] = values });
        }
        var run = CliInvocation.Run("embed-tiles", "--model", TinyTile, "--out", Out, "--pixels", pixels, "--batch-size", "1");
        TestContext.Out.WriteLine(run.Error);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Contain($"{pixels}: pixel_values tile 1 holds NaN or infinity").And.Contain("must be finite"));
        Assert.That(File.Exists(Out), Is.False);

        // The library call checks its input as well.
        using var encoder = TileEncoder.Load(TinyTile);
        using var batch = full(new long[] { 2, 3, 224, 224 }, 0.5f);
        batch[0, 0, 0, 0] = tensor(float.PositiveInfinity);
        Assert.That(() => encoder.Embed(batch), Throws.InstanceOf<GigaPathException>().With.Message.Contain("tile 0 holds NaN or infinity"));
    }

    [Test]
    public void ASlideEncoderWithNaNWeightsFailsPointingAtTheWeights()
    {
        var nan = PoisonedWeights.Copy(TinySlide, Path.Combine(_dir, "nan-slide"), "encoder.layers.1.ffn.fc2.bias");
        using var encoder = SlideEncoder.Load(nan);
        using var scope = NewDisposeScope();
        var features = randn(6, encoder.Config.InputChannels, generator: new Generator(3));
        var coords = tensor(Enumerable.Range(0, 6).SelectMany(i => new long[] { i % 3 * 256, i / 3 * 256 }).ToArray(), [6, 2]);
        var error = Assert.Throws<GigaPathException>(() => encoder.Embed(features, coords).Dispose())!;
        TestContext.Out.WriteLine(error.Message);
        Assert.That(error.Message, Does.StartWith("slide encoder: the output for the CLS token").And.Contain("NaN or infinity")
            .And.Contain("tile embeddings are finite").And.Contain(Path.Combine(nan, "model.safetensors")));

        using var healthy = SlideEncoder.Load(TinySlide);
        Assert.That(() => healthy.Embed(features, coords).Dispose(), Throws.Nothing, "the same input through sound weights is fine");
    }

    [Test]
    public void AHeadWithNaNWeightsFailsNamingTheSlide()
    {
        var cohort = SyntheticCohort.Create(slides: 12, minTiles: 8, maxTiles: 12);
        try
        {
            var trained = Path.Combine(cohort.Root, "linear");
            CrossValidation.Run(new CrossValidationRequest(cohort.LabelsPath, cohort.FeaturesDir, trained,
                new TrainingOptions(HeadKind.Linear) { Folds = 3 }));
            var head = Path.Combine(trained, "fold_0");
            var nan = PoisonedWeights.Copy(head, Path.Combine(cohort.Root, "nan-head"), "weight", "head.safetensors");
            var outCsv = Path.Combine(cohort.Root, "p.csv");
            var slide = Path.Combine(cohort.FeaturesDir, "slide_000.safetensors");

            Assert.That(CliInvocation.Run("predict", "--head", head, slide, "--out", outCsv).ExitCode, Is.EqualTo(0), "sound head");
            File.Delete(outCsv);
            var run = CliInvocation.Run("predict", "--head", nan, slide, "--out", outCsv);
            TestContext.Out.WriteLine(run.Error);
            Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
            Assert.That(run.Error, Does.Contain("slide 'slide_000'").And.Contain(slide).And.Contain("head's output (logits) holds NaN or infinity")
                .And.Contain("head's weights"));
            Assert.That(File.Exists(outCsv), Is.False);
        }
        finally
        {
            cohort.Delete();
        }
    }
}
