using GigaPath.Weights;
using NUnit.Framework;
using static TorchSharp.torch;

namespace GigaPath.Tests.Training;

/// <summary>Bad cohorts are refused before any training starts, with exit code 2 and a message naming the problem.</summary>
public class FinetuneInputErrorTests
{
    private SyntheticCohort _cohort = null!;

    [SetUp]
    public void SetUp() => _cohort = SyntheticCohort.Create(slides: 12, minTiles: 5, maxTiles: 8);

    [TearDown]
    public void TearDown() => _cohort.Delete();

    private (int Code, string Error, string Out) Finetune(params string[] extra) => FinetuneWithFolds("3", extra);

    private (int Code, string Error, string Out) FinetuneWithFolds(string folds, params string[] extra)
    {
        var outDir = Path.Combine(_cohort.Root, "out");
        var run = GigaPath.Tests.Cli.CliInvocation.Run(["finetune", "--labels", _cohort.LabelsPath, "--features", _cohort.FeaturesDir,
            "--head", "linear", "--folds", folds, "--out", outDir, .. extra]);
        return (run.ExitCode, run.Error, outDir);
    }

    private void AssertRefused((int Code, string Error, string Out) r, params string[] fragments)
    {
        Assert.That(r.Code, Is.EqualTo(2), r.Error);
        foreach (var f in fragments) Assert.That(r.Error, Does.Contain(f));
        Assert.That(File.Exists(Path.Combine(r.Out, "report.json")), Is.False, "nothing may be trained or written");
        Assert.That(Directory.Exists(Path.Combine(r.Out, "fold_0")), Is.False);
    }

    [Test]
    public void ValidCohortRuns()
    {
        var r = Finetune();
        Assert.That(r.Code, Is.EqualTo(0), r.Error);
        Assert.That(File.Exists(Path.Combine(r.Out, "report.json")));
    }

    [Test]
    public void MissingLabelIsRefused()
    {
        var lines = File.ReadAllLines(_cohort.LabelsPath);
        lines[3] = lines[3].Split(',')[0] + ",";
        File.WriteAllLines(_cohort.LabelsPath, lines);
        AssertRefused(Finetune(), "slide_002", "has no label", "labels.csv:4");
    }

    [Test]
    public void ListedButAbsentFileIsRefused()
    {
        File.Delete(Path.Combine(_cohort.FeaturesDir, "slide_005.safetensors"));
        AssertRefused(Finetune(), "slide_005", "no feature file", "slide_005.safetensors");
    }

    [Test]
    public void SingleClassFoldIsRefused()
    {
        // fold 0 holds only class-0 slides
        var rows = _cohort.Slides.Select((s, i) => $"{s.Id},{s.Label},{(s.Label == 0 && i < 4 ? 0 : 1 + i % 2)}");
        File.WriteAllLines(_cohort.LabelsPath, new[] { "slide_id,label,fold" }.Concat(rows));
        AssertRefused(Finetune(), "fold 0 tests only class '0'");
    }

    [Test]
    public void MismatchedEmbeddingWidthsAreRefused()
    {
        var path = Path.Combine(_cohort.FeaturesDir, "slide_007.safetensors");
        using (var scope = NewDisposeScope())
            SafeTensorsWriter.Write(path, new Dictionary<string, Tensor> { ["embeddings"] = randn(6, 48), ["coords"] = zeros(6, 2) });
        AssertRefused(Finetune(), "slide_007.safetensors", "48 wide", "32");
    }

    [Test]
    public void TooFewSlidesPerClassForTheFoldsIsRefused()
    {
        AssertRefused(FinetuneWithFolds("7"), "fewer than the 7 folds");
    }

    [Test]
    public void UnknownConfigKeyIsRefused()
    {
        var cfg = Path.Combine(_cohort.Root, "task.yaml");
        File.WriteAllText(cfg, "epochs: 3\nlearning_rate: 0.1\n");
        AssertRefused(Finetune("--config", cfg), "task.yaml:2", "unknown option 'learning_rate'");
    }
}
