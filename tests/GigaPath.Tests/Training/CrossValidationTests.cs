using GigaPath.Models.Heads;
using GigaPath.Weights;
using GigaPath.Training;
using NUnit.Framework;

namespace GigaPath.Tests.Training;

public class CrossValidationTests
{
    private static CrossValidationReport Run(SyntheticCohort cohort, string head, string outName, params (string Key, string Value)[] settings)
    {
        var options = new TrainingOptions(Enum.Parse<HeadKind>(head, ignoreCase: true)) { Folds = 4 };
        foreach (var (k, v) in settings) options.Set(k, v, "test");
        var slideModel = head == "slide" ? TinySlideEncoder.Save(cohort.Root) : null;
        var request = new CrossValidationRequest(cohort.LabelsPath, cohort.FeaturesDir, Path.Combine(cohort.Root, outName), options, slideModel);
        return CrossValidation.Run(request, TestContext.Progress);
    }

    private static (string, string)[] Settings(string head) => head switch
    {
        "abmil" => AbmilFast,
        "slide" => SlideFast,
        _ => [],
    };

    private static readonly (string, string)[] SlideFast = [("epochs", "10"), ("lr", "3e-3"), ("accumulate", "2"), ("feat_layer", "1-2"), ("global_pool", "true"), ("patience", "0")];

    private static readonly (string, string)[] AbmilFast = [("epochs", "12"), ("lr", "1e-3"), ("hidden_dim", "32"), ("attention_dim", "16"), ("warmup_epochs", "1"), ("patience", "0")];

    [TestCase("linear")]
    [TestCase("abmil")]
    [TestCase("slide")]
    public void LearnableCohortReachesHighAuroc(string head)
    {
        var cohort = SyntheticCohort.Create();
        try
        {
            var report = Run(cohort, head, "out", Settings(head));
            TestContext.Progress.WriteLine($"{head}: AUROC {report.Auroc.Mean:F4} ± {report.Auroc.Std:F4}; folds {string.Join(", ", report.Folds.Select(f => f.Auroc.ToString("F3")))}");
            Assert.That(report.Auroc.Mean, Is.GreaterThanOrEqualTo(0.95));
            Assert.That(report.Folds, Has.Count.EqualTo(4));
            // the saved fold heads reload and reproduce their test predictions
            var predictions = Predictor.Run(new PredictionRequest(Path.Combine(cohort.Root, "out", "fold_3"), [cohort.FeaturesDir], Path.Combine(cohort.Root, "p.csv")));
            foreach (var p in report.Predictions.Where(p => p.Fold == 3))
                Assert.That(predictions.Single(q => q.SlideId == p.SlideId).Probabilities, Is.EqualTo(p.Probabilities).Within(1e-6), p.SlideId);
        }
        finally { cohort.Delete(); }
    }

    [Test]
    public void ShuffledLabelsStayNearChance()
    {
        var cohort = SyntheticCohort.Create(shuffleLabels: true);
        try
        {
            foreach (var head in new[] { "linear", "abmil", "slide" })
            {
                var report = Run(cohort, head, "out-" + head, Settings(head));
                TestContext.Progress.WriteLine($"shuffled labels, {head}: AUROC {report.Auroc.Mean:F4} ± {report.Auroc.Std:F4}");
                Assert.That(report.Auroc.Mean, Is.InRange(0.25, 0.75), head);
            }
        }
        finally { cohort.Delete(); }
    }

    [Test]
    public void SameSeedGivesIdenticalNumbers()
    {
        var cohort = SyntheticCohort.Create(slides: 24, minTiles: 10, maxTiles: 20);
        try
        {
            (string, string)[] quick = [("epochs", "3"), ("hidden_dim", "16"), ("attention_dim", "8"), ("seed", "5")];
            var a = Run(cohort, "abmil", "a", quick);
            var b = Run(cohort, "abmil", "b", quick);
            Assert.That(b.Predictions.Select(p => p.Probabilities), Is.EqualTo(a.Predictions.Select(p => p.Probabilities)));
            Assert.That(b.Folds.Select(f => f.History.Select(h => h.TrainLoss)), Is.EqualTo(a.Folds.Select(f => f.History.Select(h => h.TrainLoss))));
            Assert.That(File.ReadAllBytes(Path.Combine(cohort.Root, "b", "fold_1", "head.safetensors")),
                Is.EqualTo(File.ReadAllBytes(Path.Combine(cohort.Root, "a", "fold_1", "head.safetensors"))));
            // The run's cost: every training step's tiles (same in both runs), a rate and the process's peak memory.
            Assert.That(a.Cost!.TrainingTiles, Is.EqualTo(b.Cost!.TrainingTiles).And.GreaterThan(0));
            Assert.That(a.Cost.TrainingTilesPerSecond, Is.GreaterThan(0));
            Assert.That(a.Cost.PeakRssBytes, Is.GreaterThan(0));
            var c = Run(cohort, "abmil", "c", [.. quick[..3], ("seed", "6")]);
            Assert.That(c.Predictions.Select(p => p.Probabilities), Is.Not.EqualTo(a.Predictions.Select(p => p.Probabilities)), "another seed changes the numbers");
        }
        finally { cohort.Delete(); }
    }

    [Test]
    public void ReportHasTheContractedFields()
    {
        var cohort = SyntheticCohort.Create(slides: 24, minTiles: 10, maxTiles: 20);
        try
        {
            Run(cohort, "linear", "out");
            var outDir = Path.Combine(cohort.Root, "out");
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")));
            var root = doc.RootElement;
            foreach (var key in new[] { "auroc", "balanced_accuracy", "weighted_f1" })
            {
                Assert.That(root.GetProperty(key).GetProperty("mean").GetDouble(), Is.InRange(0.0, 1.0), key);
                Assert.That(root.GetProperty(key).GetProperty("std").GetDouble(), Is.GreaterThanOrEqualTo(0.0), key);
            }
            var cost = root.GetProperty("cost");
            Assert.That(cost.GetProperty("seconds").GetDouble(), Is.GreaterThan(0));
            Assert.That(cost.GetProperty("peak_rss_bytes").GetInt64(), Is.GreaterThan(0));
            Assert.That(cost.GetProperty("training_tiles").GetInt64(), Is.Zero, "the linear probe trains on slide vectors");
            Assert.That(cost.GetProperty("training_tiles_per_second").ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Null));
            Assert.That(root.GetProperty("quadratic_kappa").ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Object), "numeric labels count as graded");
            var folds = root.GetProperty("folds");
            Assert.That(folds.GetArrayLength(), Is.EqualTo(4));
            var cm = folds[0].GetProperty("confusion_matrix");
            Assert.That(cm.GetArrayLength(), Is.EqualTo(2));
            Assert.That(cm.EnumerateArray().Sum(r => r.EnumerateArray().Sum(v => v.GetInt64())), Is.EqualTo(folds[0].GetProperty("n_test").GetInt32()));
            for (int k = 0; k < 4; k++)
            {
                Assert.That(File.Exists(Path.Combine(outDir, $"fold_{k}", "head.safetensors")));
                Assert.That(File.Exists(Path.Combine(outDir, $"fold_{k}", "head.json")));
                Assert.That(File.ReadAllText(Path.Combine(outDir, $"fold_{k}", "report.md")), Does.Contain("Confusion matrix"));
            }
            Assert.That(File.ReadAllText(Path.Combine(outDir, "report.md")), Does.Contain("| AUROC |"));
            var predictions = File.ReadAllLines(Path.Combine(outDir, "predictions.csv"));
            Assert.That(predictions[0], Is.EqualTo("slide_id,fold,label,predicted,prob_0,prob_1"));
            Assert.That(predictions, Has.Length.EqualTo(25));
        }
        finally { cohort.Delete(); }
    }

    [TestCase("linear")]
    [TestCase("abmil")]
    public void ThreeClassCohortIsLearnedAndGraded(string head)
    {
        var cohort = SyntheticCohort.Create(slides: 45, classes: 3);
        try
        {
            var report = Run(cohort, head, "out", [.. Settings(head), ("folds", "3")]);
            TestContext.Progress.WriteLine($"3 classes, {head}: macro AUROC {report.Auroc.Mean:F4}, kappa {report.QuadraticKappa?.Mean:F4}");
            Assert.That(report.Classes, Is.EqualTo(new[] { "0", "1", "2" }));
            Assert.That(report.Auroc.Mean, Is.GreaterThanOrEqualTo(0.95));
            Assert.That(report.QuadraticKappa, Is.Not.Null);
            Assert.That(report.Pooled.ConfusionMatrix.Sum(r => r.Sum()), Is.EqualTo(45));
        }
        finally { cohort.Delete(); }
    }

    [Test]
    public void BFloat16TrainingKeepsFloat32MasterWeights()
    {
        GigaPath.Tests.Runtime.Bf16Hardware.Require();
        var cohort = SyntheticCohort.Create();
        try
        {
            var report = Run(cohort, "abmil", "out", [.. AbmilFast, ("dtype", "bfloat16")]);
            TestContext.Progress.WriteLine($"bfloat16 abmil: AUROC {report.Auroc.Mean:F4}");
            Assert.That(report.Auroc.Mean, Is.GreaterThanOrEqualTo(0.95));
            using var weights = GigaPath.Weights.SafeTensorsFile.Open(Path.Combine(cohort.Root, "out", "fold_0", "head.safetensors"));
            Assert.That(weights.Tensors.Select(t => t.DType).Distinct(), Is.EqualTo(new[] { GigaPath.Weights.TensorDType.F32 }));
        }
        finally { cohort.Delete(); }
    }

    [Test]
    public void LinearProbeUsesStoredSlideEmbeddingsWhenPresent()
    {
        var cohort = SyntheticCohort.Create(slides: 24, minTiles: 10, maxTiles: 20, slideEmbedding: true);
        try
        {
            var report = Run(cohort, "linear", "out");
            var config = HeadCheckpoint.ReadConfig(Path.Combine(cohort.Root, "out", "fold_0"));
            Assert.That(config.SlideInput, Is.EqualTo("stored"));
            var mean = Run(cohort, "linear", "out-mean", ("slide_input", "mean"));
            Assert.That(HeadCheckpoint.ReadConfig(Path.Combine(cohort.Root, "out-mean", "fold_0")).SlideInput, Is.EqualTo("mean"));
            // The stored vector is twice the mean; standardisation makes the two fits the same problem, so every
            // out-of-fold probability agrees (not just the AUROC, which is 1.0 for both on this separable cohort), up to
            // float32 rounding of the inputs carried through training (measured 1.0e-5).
            double worst = MaxProbabilityDiff(report, mean);
            TestContext.Progress.WriteLine($"linear probe, stored (2 x mean) vs mean input: max |p diff| {worst:E2}");
            Assert.That(worst, Is.LessThanOrEqualTo(1e-4));

            // And the stored vector is what was read: replaced by noise, the same fit gives other probabilities.
            var generator = new TorchSharp.torch.Generator(3);
            foreach (var file in Directory.GetFiles(cohort.FeaturesDir, "*.safetensors"))
            {
                using var scope = TorchSharp.torch.NewDisposeScope();
                Dictionary<string, TorchSharp.torch.Tensor> tensors;
                using (var f = GigaPath.Weights.SafeTensorsFile.Open(file))
                    tensors = f.Names.ToDictionary(n => n, n => f.Load(n));
                tensors["slide_embedding"] = TorchSharp.torch.randn(tensors["slide_embedding"].shape, generator: generator);
                GigaPath.Weights.SafeTensorsWriter.Write(file, tensors);
            }
            var noise = Run(cohort, "linear", "out-noise");
            double moved = MaxProbabilityDiff(noise, mean);
            TestContext.Progress.WriteLine($"linear probe, noise stored vs mean input: max |p diff| {moved:F3}, AUROC {noise.Auroc.Mean:F3}");
            Assert.That(moved, Is.GreaterThan(0.1));
        }
        finally { cohort.Delete(); }
    }

    private static double MaxProbabilityDiff(CrossValidationReport a, CrossValidationReport b)
    {
        var byId = a.Predictions.ToDictionary(p => p.SlideId, p => p.Probabilities);
        Assert.That(b.Predictions.Select(p => p.SlideId), Is.EquivalentTo(byId.Keys));
        return b.Predictions.Max(p => p.Probabilities.Zip(byId[p.SlideId]).Max(x => Math.Abs(x.First - x.Second)));
    }

    [Test]
    public void FrozenSlideEncoderKeepsItsWeights()
    {
        GigaPath.Tests.Runtime.Bf16Hardware.Require();
        var cohort = SyntheticCohort.Create(slides: 16, minTiles: 10, maxTiles: 20);
        try
        {
            Run(cohort, "slide", "frozen", ("epochs", "2"), ("accumulate", "2"), ("freeze", "true"), ("feat_layer", "2"), ("folds", "2"), ("dtype", "bfloat16"));
            using var trained = GigaPath.Weights.SafeTensorsFile.Open(Path.Combine(cohort.Root, "frozen", "fold_0", "head.safetensors"));
            using var original = GigaPath.Weights.SafeTensorsFile.Open(Path.Combine(cohort.Root, "slide-model", "model.safetensors"));
            foreach (var name in original.Names)
                Assert.That(trained.ReadFloats("slide_encoder." + name).Data, Is.EqualTo(original.ReadFloats(name).Data), name);
            Assert.That(trained.Names.Where(n => n.StartsWith("classifier.", StringComparison.Ordinal)), Is.EquivalentTo(new[] { "classifier.0.weight", "classifier.0.bias" }));
            var config = HeadCheckpoint.ReadConfig(Path.Combine(cohort.Root, "frozen", "fold_0"));
            Assert.That((config.Freeze, config.FeatLayer), Is.EqualTo((true, "2")));
        }
        finally { cohort.Delete(); }
    }
}
