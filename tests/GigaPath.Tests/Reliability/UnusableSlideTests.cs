using GigaPath.Models.Heads;
using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Tests.Cli;
using GigaPath.Tests.Training;
using GigaPath.Training;
using NUnit.Framework;

namespace GigaPath.Tests.Reliability;

/// <summary>
/// Issue 25, classes 12 and 14: no wrong success — a slide with no tiles or a NaN feature is refused by embed-slide,
/// predict, finetune and pca with a message naming the file (pca used to write a PNG with "variances NaN" and exit 0;
/// predict gave probabilities for a 0-tile slide) — and a feature file of the wrong width is refused from its
/// declared shape, before its data is read (embed-slide read 2.15 GB of 1536-wide features first).
/// </summary>
public class UnusableSlideTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("unusable-slide");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    /// <summary>A slide of <paramref name="count"/> tiles, <paramref name="dim"/> wide, on a 256-px grid; <paramref name="nanAt"/> poisons one value.</summary>
    private string Slide(string name, int count, int dim, int? nanAt = null, bool h5 = false)
    {
        var features = Enumerable.Range(0, count * dim).Select(i => (float)Math.Sin(i)).ToArray();
        if (nanAt is int at) features[at] = float.NaN;
        var coords = Enumerable.Range(0, count).SelectMany(i => new double[] { 256 * (i % 10), 256 * (i / 10) }).ToArray();
        var tiles = new TileFeatures(features, count, dim, coords, new Dictionary<string, object> { ["patch_size_level0"] = 256L });
        var path = Path.Combine(_dir, name + (h5 ? ".h5" : ".safetensors"));
        if (h5) TileFeatureFile.WriteH5(path, tiles);
        else TileFeatureFile.WriteSafetensors(path, tiles);
        return path;
    }

    private static void AssertRefused(CliInvocation run, string path, string fragment, string output)
    {
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.StartWith("error: " + path).And.Contain(fragment).And.Not.Contain("   at "));
        Assert.That(File.Exists(output), Is.False, "no output for a refused slide");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void PcaRefusesANaNFeatureAndAnEmptySlide(bool h5)
    {
        var png = Path.Combine(_dir, "map.png");
        var nan = Slide("nan", 12, 8, nanAt: 8 * 5 + 3, h5: h5);
        AssertRefused(CliInvocation.Run("pca", "--features", nan, "--out", png), nan, "tile 5 holds a non-finite feature value (NaN) at feature 3", png);
        var empty = Slide("empty", 0, 8, h5: h5);
        AssertRefused(CliInvocation.Run("pca", "--features", empty, "--out", png), empty, "holds no tiles (features [0, 8])", png);
    }

    [Test]
    public void EmbedSlideRefusesANaNFeatureAndAnEmptySlideNamingTheFile()
    {
        var output = Path.Combine(_dir, "out.safetensors");
        var model = FixturePaths.Get("slide_encoder_tiny"); // in_chans 32
        var nan = Slide("nan", 12, 32, nanAt: 32 * 7);
        AssertRefused(CliInvocation.Run("embed-slide", "--model", model, "--tiles", nan, "--out", output), nan, "tile 7 holds a non-finite feature value (NaN) at feature 0", output);
        var empty = Slide("empty", 0, 32, h5: true);
        AssertRefused(CliInvocation.Run("embed-slide", "--model", model, "--tiles", empty, "--out", output), empty, "holds no tiles", output);
    }

    [Test]
    public void EmbedSlideRefusesTheWrongWidthFromTheDeclaredShape()
    {
        // 20,000 × 1536 float32: 123 MB that reading would materialise before the model's width was compared.
        var wide = Slide("wide", 20_000, 1536);
        var output = Path.Combine(_dir, "out.safetensors");
        CliInvocation? run = null;
        long allocated = HostileInputs.AllocatedBy(() => run = CliInvocation.Run("embed-slide", "--model", FixturePaths.Get("slide_encoder_tiny"),
            "--tiles", wide, "--out", output));
        AssertRefused(run!, wide, "'features' has shape [20000, 1536]: embeddings of 1536 values; this model takes 32", output);
        Assert.That(allocated, Is.LessThan(32L << 20), "refused from the header: the 123 MB of features are never read");
    }

    [Test]
    public void PredictAndFinetuneRefuseAnEmptySlideAndANaNFeature()
    {
        var cohort = SyntheticCohort.Create(slides: 6, minTiles: 5, maxTiles: 8);
        try
        {
            var empty = Path.Combine(cohort.FeaturesDir, "slide_002.safetensors");
            File.Delete(empty);
            File.Move(Slide("slide_002", 0, SyntheticCohort.Dim), empty);

            // Probed before training or predicting: refused at the start, naming the file.
            var e = Assert.Throws<GigaPathException>(() => FeatureFiles.Probe(empty));
            Assert.That(e!.Message, Does.StartWith(empty + ": holds no tiles"));
            var options = new TrainingOptions(HeadKind.Linear) { Folds = 2, Epochs = 1 };
            e = Assert.Throws<GigaPathException>(() => CrossValidation.Run(new CrossValidationRequest(cohort.LabelsPath, cohort.FeaturesDir, Path.Combine(cohort.Root, "heads"), options)));
            Assert.That(e!.Message, Does.StartWith(empty + ": holds no tiles"));

            var nan = Path.Combine(cohort.FeaturesDir, "slide_003.safetensors");
            File.Delete(nan);
            File.Move(Slide("slide_003", 6, SyntheticCohort.Dim, nanAt: 40), nan);
            e = Assert.Throws<GigaPathException>(() => FeatureFiles.Read(nan));
            Assert.That(e!.Message, Does.StartWith(nan + ": tile 1 holds a non-finite feature value (NaN) at feature 8"));
        }
        finally
        {
            cohort.Delete();
        }
    }
}
