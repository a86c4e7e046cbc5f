using GigaPath.Models.Heads;
using GigaPath.Models.Slide;
using GigaPath.Training;
using GigaPath.Weights;
using NUnit.Framework;
using static TorchSharp.torch;

namespace GigaPath.Tests.Training;

/// <summary>Attention pooling over the slide encoder's contextual tile outputs, computed here or stored by the pipeline.</summary>
public class ContextualAttentionTests
{
    private static readonly (string, string)[] Quick = [("epochs", "12"), ("lr", "1e-3"), ("hidden_dim", "32"), ("attention_dim", "16"), ("patience", "0")];

    private static TrainingOptions Options(params (string Key, string Value)[] extra)
    {
        var options = new TrainingOptions(HeadKind.Abmil) { Folds = 4 };
        foreach (var (k, v) in Quick.Concat(extra)) options.Set(k, v, "test");
        return options;
    }

    [Test]
    public void ComputedWithASlideModelLearnsAndPredictsTheSame()
    {
        var cohort = SyntheticCohort.Create();
        try
        {
            var model = TinySlideEncoder.Save(cohort.Root);
            var outDir = Path.Combine(cohort.Root, "ctx");
            var report = CrossValidation.Run(new CrossValidationRequest(cohort.LabelsPath, cohort.FeaturesDir, outDir, Options(), model), TestContext.Progress);
            TestContext.Progress.WriteLine($"contextual abmil: AUROC {report.Auroc.Mean:F4}");
            Assert.That(report.Auroc.Mean, Is.GreaterThanOrEqualTo(0.95));

            var config = HeadCheckpoint.ReadConfig(Path.Combine(outDir, "fold_2"));
            using (var encoder = SlideEncoder.Load(model))
            {
                Assert.That(config.TileInput, Is.EqualTo("contextual"));
                Assert.That(config.InputDim, Is.EqualTo(TinySlideEncoder.Config.EmbedDim));
                Assert.That(config.SlideEncoderSha256, Is.EqualTo(encoder.WeightsSha256));
            }
            var predictions = Predictor.Run(new PredictionRequest(Path.Combine(outDir, "fold_2"), [cohort.FeaturesDir], Path.Combine(outDir, "p.csv")));
            foreach (var p in report.Predictions.Where(p => p.Fold == 2))
                Assert.That(predictions.Single(q => q.SlideId == p.SlideId).Probabilities, Is.EqualTo(p.Probabilities).Within(1e-6));

            // another encoder under the recorded name is refused
            using (var other = SlideEncoder.CreateRandom(TinySlideEncoder.Config, 99)) other.Save(model);
            var e = Assert.Throws<GigaPathException>(() => Predictor.Run(new PredictionRequest(Path.Combine(outDir, "fold_2"), [cohort.FeaturesDir], Path.Combine(outDir, "q.csv"))));
            Assert.That(e!.Message, Does.Contain("SHA-256"));
        }
        finally { cohort.Delete(); }
    }

    [Test]
    public void StoredContextualEmbeddingsAreRead()
    {
        var cohort = SyntheticCohort.Create(slides: 24, minTiles: 10, maxTiles: 20);
        try
        {
            // what `gigapath run` leaves next to the tile features: <id>.slide.safetensors with tile_embeddings_ctx [N, 24]
            foreach (var (id, _) in cohort.Slides)
            {
                using var file = SafeTensorsFile.Open(Path.Combine(cohort.FeaturesDir, id + ".safetensors"));
                using var scope = NewDisposeScope();
                var ctx = file.Load("embeddings").narrow(1, 0, 24) * 2;
                SafeTensorsWriter.Write(Path.Combine(cohort.FeaturesDir, id + ".slide.safetensors"), new Dictionary<string, Tensor> { ["tile_embeddings_ctx"] = ctx });
            }
            var outDir = Path.Combine(cohort.Root, "stored");
            var report = CrossValidation.Run(new CrossValidationRequest(cohort.LabelsPath, cohort.FeaturesDir, outDir, Options(("tile_input", "contextual"), ("folds", "3"))));
            var config = HeadCheckpoint.ReadConfig(Path.Combine(outDir, "fold_0"));
            Assert.That((config.TileInput, config.InputDim, config.SlideEncoderSource), Is.EqualTo(("contextual", 24, (string?)null)));
            Assert.That(report.Slides, Is.EqualTo(24));

            File.Delete(Path.Combine(cohort.FeaturesDir, "slide_004.slide.safetensors"));
            var e = Assert.Throws<GigaPathException>(() => Predictor.Run(new PredictionRequest(Path.Combine(outDir, "fold_0"), [cohort.FeaturesDir], Path.Combine(outDir, "p.csv"))));
            Assert.That(e!.Message, Does.Contain("slide_004").And.Contain("tile_embeddings_ctx"));
            Assert.That(File.Exists(Path.Combine(outDir, "p.csv")), Is.False);
        }
        finally { cohort.Delete(); }
    }

    [Test]
    public void ContextualWithoutStoredEmbeddingsOrEncoderIsRefused()
    {
        var cohort = SyntheticCohort.Create(slides: 12, minTiles: 5, maxTiles: 8);
        try
        {
            var e = Assert.Throws<GigaPathException>(() => CrossValidation.Run(
                new CrossValidationRequest(cohort.LabelsPath, cohort.FeaturesDir, Path.Combine(cohort.Root, "o"), Options(("tile_input", "contextual"), ("folds", "3")))));
            Assert.That(e!.Message, Does.Contain("tile_embeddings_ctx").And.Contain("slideModel"));
        }
        finally { cohort.Delete(); }
    }
}
