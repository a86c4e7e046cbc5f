using GigaPath.Models.Heads;
using GigaPath.Training;
using NUnit.Framework;

namespace GigaPath.Tests.Training;

/// <summary>
/// The public training API as a lab's code uses it: options from a task file and settings, cross-validation with
/// progress and cancellation, then prediction with a fold's head.
/// </summary>
public class TrainingApiTests
{
    private sealed class Lines : IProgress<string>
    {
        public List<string> Seen { get; } = new();

        public void Report(string value)
        {
            lock (Seen) Seen.Add(value);
        }
    }

    [Test]
    public async Task CrossValidateThenPredictWithAFoldsHead()
    {
        var cohort = SyntheticCohort.Create(slides: 24);
        try
        {
            var taskFile = Path.Combine(cohort.Root, "task.yaml");
            File.WriteAllText(taskFile, "name: demo\nfolds: 3 # three folds\nc: 0.5\ngraded: false\n");
            var options = new TrainingOptions(HeadKind.Linear);
            options.ApplyFile(taskFile);
            options.Set("max-iter", "200");
            Assert.That(options.Head, Is.EqualTo(HeadKind.Linear));
            Assert.That(TrainingOptions.Keys, Does.Contain("max_iter").And.Contain("folds"));

            var progress = new Lines();
            var output = Path.Combine(cohort.Root, "cv");
            var result = await CrossValidation.RunAsync(new CrossValidationRequest(cohort.LabelsPath, cohort.FeaturesDir, output, options), progress);

            Assert.That(result.OutputDirectory, Is.EqualTo(Path.GetFullPath(output)));
            Assert.That(File.Exists(result.ReportPath), Is.True);
            Assert.That(result.HeadPaths, Has.Count.EqualTo(3));
            Assert.That(result.HeadPaths.All(File.Exists), Is.True);
            Assert.That(result.SlideCount, Is.EqualTo(24));
            Assert.That(result.Classes, Has.Count.EqualTo(2));
            Assert.That(result.Auroc.Mean, Is.InRange(0.0, 1.0));
            Assert.That(result.Auroc.StandardDeviation, Is.GreaterThanOrEqualTo(0));
            Assert.That(result.Auroc.Pooled, Is.Not.Null);
            Assert.That(result.QuadraticKappa, Is.Null, "classes set ungraded in the task file");
            Assert.That(progress.Seen, Has.Some.StartWith("fold 0: test AUROC"));
            Assert.That(File.ReadAllText(result.ReportPath), Does.Contain("\"task\": \"demo\""));

            var predictions = await Predictor.RunAsync(new PredictionRequest(result.HeadPaths[1], [cohort.FeaturesDir], Path.Combine(cohort.Root, "p.csv")));
            Assert.That(predictions, Has.Count.EqualTo(24));
            foreach (var p in predictions)
            {
                Assert.That(p.Probabilities.Sum(), Is.EqualTo(1).Within(1e-6), p.SlideId);
                Assert.That(p.PredictedClass, Is.EqualTo(result.Classes[p.Probabilities[1] > p.Probabilities[0] ? 1 : 0]), p.SlideId);
                Assert.That(p.Attention, Is.Null, "a linear probe has no attention");
            }
            Assert.That(File.ReadAllLines(Path.Combine(cohort.Root, "p.csv")), Has.Length.EqualTo(25));
        }
        finally
        {
            cohort.Delete();
        }
    }

    [Test]
    public void OptionErrorsNameTheirSourceAndCancellationStopsARun()
    {
        var options = new TrainingOptions(HeadKind.Abmil);
        var e = Assert.Throws<GigaPathException>(() => options.Set("epochs", "zero"));
        Assert.That(e!.Message, Is.EqualTo("option 'epochs': 'zero' is not an integer"));
        e = Assert.Throws<GigaPathException>(() => options.Set("nope", "1", "my.yaml:3"));
        Assert.That(e!.Message, Does.StartWith("my.yaml:3: unknown option 'nope'"));

        var cohort = SyntheticCohort.Create(slides: 12);
        try
        {
            using var cancelled = new CancellationTokenSource();
            cancelled.Cancel();
            var request = new CrossValidationRequest(cohort.LabelsPath, cohort.FeaturesDir, Path.Combine(cohort.Root, "cv"), new TrainingOptions(HeadKind.Linear));
            Assert.That(async () => await CrossValidation.RunAsync(request, cancellationToken: cancelled.Token), Throws.InstanceOf<OperationCanceledException>());
            Assert.That(File.Exists(Path.Combine(cohort.Root, "cv", "report.json")), Is.False);
        }
        finally
        {
            cohort.Delete();
        }
    }
}
