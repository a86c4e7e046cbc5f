using GigaPath.Models.Heads;
using System.Globalization;
using GigaPath.IO;
using GigaPath.Training;
using GigaPath.Weights;
using NUnit.Framework;
using static TorchSharp.torch;

namespace GigaPath.Tests.Training;

public class PredictCommandTests
{
    private static SyntheticCohort _cohort = null!;
    private static string _abmil = null!;
    private static CrossValidationReport _abmilReport = null!;

    [OneTimeSetUp]
    public void TrainOnce()
    {
        _cohort = SyntheticCohort.Create(slides: 24, minTiles: 10, maxTiles: 20);
        var options = new TrainingOptions(HeadKind.Abmil) { Folds = 3, Epochs = 4, HiddenDim = 16, AttentionDim = 8 };
        _abmil = Path.Combine(_cohort.Root, "abmil");
        _abmilReport = CrossValidation.Run(new CrossValidationRequest(_cohort.LabelsPath, _cohort.FeaturesDir, _abmil, options));
    }

    [OneTimeTearDown]
    public void Cleanup() => _cohort.Delete();

    private static (int Code, string Error) Cli(params string[] args)
    {
        var run = GigaPath.Tests.Cli.CliInvocation.Run(args);
        return (run.ExitCode, run.Error);
    }

    [Test]
    public void ProbabilitiesMatchTheCrossValidationAndAttentionIsWritten()
    {
        var outCsv = Path.Combine(_cohort.Root, "pred", "p.csv");
        var (code, error) = Cli("predict", "--head", Path.Combine(_abmil, "fold_0"), _cohort.FeaturesDir, "--out", outCsv);
        Assert.That(code, Is.EqualTo(0), error);
        var rows = File.ReadAllLines(outCsv);
        Assert.That(rows[0], Is.EqualTo("slide_id,path,predicted,prob_0,prob_1"));
        Assert.That(rows, Has.Length.EqualTo(25));
        var byId = rows.Skip(1).Select(r => r.Split(',')).ToDictionary(f => f[0], f => double.Parse(f[4], CultureInfo.InvariantCulture));
        foreach (var p in _abmilReport.Predictions.Where(p => p.Fold == 0))
            Assert.That(byId[p.SlideId], Is.EqualTo(p.Probabilities[1]).Within(1e-6), p.SlideId);

        var attention = File.ReadAllLines(Path.Combine(_cohort.Root, "pred", "attention", "slide_003.attention.csv"));
        using var features = SafeTensorsFile.Open(Path.Combine(_cohort.FeaturesDir, "slide_003.safetensors"));
        var coords = features.ReadFloats("coords").Data;
        Assert.That(attention[0], Is.EqualTo("tile,x,y,attention,score"));
        Assert.That(attention.Length - 1, Is.EqualTo(coords.Length / 2));
        var parsed = attention.Skip(1).Select(l => l.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToList();
        Assert.That(parsed.Sum(r => r[3]), Is.EqualTo(1.0).Within(1e-5));
        for (int i = 0; i < parsed.Count; i++)
        {
            Assert.That(parsed[i][1], Is.EqualTo(coords[2 * i]));
            Assert.That(parsed[i][2], Is.EqualTo(coords[2 * i + 1]));
        }
    }

    [Test]
    public void H5InputGivesTheSameProbabilitiesAsSafetensors()
    {
        var dir = Path.Combine(_cohort.Root, "h5");
        var src = Path.Combine(_cohort.FeaturesDir, "slide_005.safetensors");
        TileFeatureFile.WriteH5(Path.Combine(dir, "slide_005.h5"), TileFeatureFile.Read(src));
        var a = Predictor.Run(new PredictionRequest(Path.Combine(_abmil, "fold_1", "head.safetensors"), [src], Path.Combine(dir, "a.csv"), AttentionFormat: AttentionFileFormat.SafeTensors));
        var b = Predictor.Run(new PredictionRequest(Path.Combine(_abmil, "fold_1", "head.json"), [dir], Path.Combine(dir, "b.csv")));
        Assert.That(b.Single().Probabilities, Is.EqualTo(a.Single().Probabilities));
        using var att = SafeTensorsFile.Open(Path.Combine(dir, "attention", "slide_005.attention.safetensors"));
        Assert.That(att.ReadFloats("attention").Data, Is.EqualTo(b.Single().Attention));
        Assert.That(att.GetInfo("coords").Shape, Is.EqualTo(new long[] { a.Single().Attention!.Count, 2 }));
    }

    [Test]
    public void MismatchedWidthIsRefusedBeforeAnythingIsWritten()
    {
        var dir = Path.Combine(_cohort.Root, "wide");
        Directory.CreateDirectory(dir);
        using (var scope = NewDisposeScope())
            SafeTensorsWriter.Write(Path.Combine(dir, "x.safetensors"), new Dictionary<string, Tensor> { ["features"] = randn(5, 40), ["coords"] = zeros(5, 2) });
        var outCsv = Path.Combine(dir, "p.csv");
        var (code, error) = Cli("predict", "--head", Path.Combine(_abmil, "fold_0"), _cohort.FeaturesDir, dir, "--out", outCsv);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error, Does.Contain("x.safetensors").And.Contain("40 wide").And.Contain("expects 32"));
        Assert.That(File.Exists(outCsv), Is.False);
    }

    [Test]
    public void AnEmptySlideOrANaNFeatureIsRefusedNamingTheFileAndNothingIsWritten()
    {
        // Issue 25: a 0-tile slide used to get probabilities and exit 0.
        var dir = Path.Combine(_cohort.Root, "unusable");
        Directory.CreateDirectory(dir);
        var empty = Path.Combine(dir, "empty.safetensors");
        using (var scope = NewDisposeScope())
            SafeTensorsWriter.Write(empty, new Dictionary<string, Tensor> { ["features"] = zeros(0, 32), ["coords"] = zeros(0, 2) });
        var outCsv = Path.Combine(dir, "p.csv");
        var (code, error) = Cli("predict", "--head", Path.Combine(_abmil, "fold_0"), empty, "--out", outCsv);
        Assert.That(code, Is.EqualTo(2), error);
        Assert.That(error, Does.StartWith("error: " + empty + ": holds no tiles (features [0, 32])"));
        Assert.That(File.Exists(outCsv), Is.False);

        var nan = Path.Combine(dir, "nan.safetensors");
        using (var scope = NewDisposeScope())
        {
            var f = randn(4, 32);
            f[2, 5] = float.NaN;
            SafeTensorsWriter.Write(nan, new Dictionary<string, Tensor> { ["features"] = f, ["coords"] = zeros(4, 2) });
        }
        (code, error) = Cli("predict", "--head", Path.Combine(_abmil, "fold_0"), nan, "--out", outCsv);
        Assert.That(code, Is.EqualTo(2), error);
        Assert.That(error, Does.StartWith("error: " + nan + ": tile 2 holds a non-finite feature value (NaN) at feature 5"));
        Assert.That(File.Exists(outCsv), Is.False);
    }

    [Test]
    public void MissingHeadConfigIsRefused()
    {
        var dir = Path.Combine(_cohort.Root, "lonely");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(_abmil, "fold_0", "head.safetensors"), Path.Combine(dir, "head.safetensors"), true);
        var (code, error) = Cli("predict", "--head", dir, _cohort.FeaturesDir, "--out", Path.Combine(dir, "p.csv"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error, Does.Contain("head.json").And.Contain("not found"));
    }

    [Test]
    public void PipelineLayoutH5WithSlideEmbeddingCompanionFeedsTheLinearProbe()
    {
        // A cohort folder as `gigapath run` leaves it: <id>.h5 tile features and <id>.slide.safetensors with slide_embedding.
        var dir = Path.Combine(_cohort.Root, "pipeline-out");
        Directory.CreateDirectory(dir);
        foreach (var (id, _) in _cohort.Slides)
        {
            var tiles = TileFeatureFile.Read(Path.Combine(_cohort.FeaturesDir, id + ".safetensors"));
            TileFeatureFile.WriteH5(Path.Combine(dir, id + ".h5"), tiles);
            using var scope = NewDisposeScope();
            var mean = tensor(tiles.Features, [tiles.Count, tiles.Dim]).mean([0L]).unsqueeze(0);
            SafeTensorsWriter.Write(Path.Combine(dir, id + ".slide.safetensors"), new Dictionary<string, Tensor> { ["slide_embedding"] = mean * 3 });
        }
        var options = new TrainingOptions(HeadKind.Linear) { Folds = 3 };
        var report = CrossValidation.Run(new CrossValidationRequest(_cohort.LabelsPath, dir, Path.Combine(dir, "cv"), options));
        var config = GigaPath.Models.Heads.HeadCheckpoint.ReadConfig(Path.Combine(dir, "cv", "fold_0"));
        Assert.That(config.SlideInput, Is.EqualTo("stored"));
        Assert.That(report.Slides, Is.EqualTo(24));

        var predictions = Predictor.Run(new PredictionRequest(Path.Combine(dir, "cv", "fold_0"), [dir], Path.Combine(dir, "p.csv")));
        Assert.That(predictions.Select(p => p.SlideId), Is.EqualTo(_cohort.Slides.Select(s => s.Id)), "companion files are not slides");
        foreach (var p in report.Predictions.Where(p => p.Fold == 0))
            Assert.That(predictions.Single(q => q.SlideId == p.SlideId).Probabilities, Is.EqualTo(p.Probabilities).Within(1e-6));
    }

    [Test]
    public void BFloat16PredictionStaysCloseToFloat32()
    {
        GigaPath.Tests.Runtime.Bf16Hardware.Require();
        var dir = Path.Combine(_cohort.Root, "bf16");
        var f32 = Predictor.Run(new PredictionRequest(Path.Combine(_abmil, "fold_0"), [_cohort.FeaturesDir], Path.Combine(dir, "a.csv")));
        var bf16 = Predictor.Run(new PredictionRequest(Path.Combine(_abmil, "fold_0"), [_cohort.FeaturesDir], Path.Combine(dir, "b.csv"), DType: "bfloat16"));
        for (int i = 0; i < f32.Count; i++)
            Assert.That(bf16[i].Probabilities[1], Is.EqualTo(f32[i].Probabilities[1]).Within(0.02), f32[i].SlideId);

        var options = new TrainingOptions(HeadKind.Linear) { Folds = 3 };
        CrossValidation.Run(new CrossValidationRequest(_cohort.LabelsPath, _cohort.FeaturesDir, Path.Combine(dir, "linear"), options));
        var l32 = Predictor.Run(new PredictionRequest(Path.Combine(dir, "linear", "fold_0"), [_cohort.FeaturesDir], Path.Combine(dir, "c.csv")));
        var l16 = Predictor.Run(new PredictionRequest(Path.Combine(dir, "linear", "fold_0"), [_cohort.FeaturesDir], Path.Combine(dir, "d.csv"), DType: "bfloat16"));
        for (int i = 0; i < l32.Count; i++)
            Assert.That(l16[i].Probabilities[1], Is.EqualTo(l32[i].Probabilities[1]).Within(0.05), l32[i].SlideId);
    }
}
