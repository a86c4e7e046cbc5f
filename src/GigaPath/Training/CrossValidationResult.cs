namespace GigaPath.Training;

/// <summary>One metric over the folds of a cross-validation: mean and population standard deviation over folds, and the pooled out-of-fold value.</summary>
public sealed class MetricSummary
{
    internal MetricSummary(double mean, double standardDeviation, double? pooled)
    {
        Mean = mean;
        StandardDeviation = standardDeviation;
        Pooled = pooled;
    }

    /// <summary>Mean of the test folds' values.</summary>
    public double Mean { get; }

    /// <summary>Population standard deviation (ddof = 0, as the reference prints it) of the test folds' values.</summary>
    public double StandardDeviation { get; }

    /// <summary>The metric over all out-of-fold predictions together; null where it is undefined.</summary>
    public double? Pooled { get; }
}

/// <summary>
/// The outcome of <see cref="CrossValidation.RunAsync"/>: the metrics (computed as scikit-learn computes them: macro
/// one-vs-rest AUROC for more than two classes, balanced accuracy, support-weighted F1) and where the run's files are.
/// </summary>
public sealed class CrossValidationResult
{
    internal CrossValidationResult(CrossValidationReport report, string outputDirectory)
    {
        Report = report;
        OutputDirectory = Path.GetFullPath(outputDirectory);
        ReportPath = Path.Combine(OutputDirectory, "report.json");
        HeadPaths = report.Folds.Select(f => Path.Combine(OutputDirectory, f.Checkpoint)).ToArray();
        Auroc = Summary(report.Auroc, report.Pooled.Auroc)!;
        BalancedAccuracy = Summary(report.BalancedAccuracy, report.Pooled.BalancedAccuracy)!;
        WeightedF1 = Summary(report.WeightedF1, report.Pooled.WeightedF1)!;
        Accuracy = Summary(report.Accuracy, report.Pooled.Accuracy)!;
        QuadraticKappa = Summary(report.QuadraticKappa, report.Pooled.QuadraticKappa);
    }

    internal CrossValidationReport Report { get; }

    /// <summary>The output folder (full path).</summary>
    public string OutputDirectory { get; }

    /// <summary>The full report, <c>report.json</c> (beside it <c>report.md</c> and <c>predictions.csv</c>).</summary>
    public string ReportPath { get; }

    /// <summary>Each fold's trained head (<c>fold_k/head.safetensors</c>, <c>head.json</c> beside it), in fold order: what <see cref="Predictor"/> loads.</summary>
    public IReadOnlyList<string> HeadPaths { get; }

    /// <summary>The class names, in the order of the heads' outputs.</summary>
    public IReadOnlyList<string> Classes => Report.Classes;

    /// <summary>Slides in the cohort.</summary>
    public int SlideCount => Report.Slides;

    /// <summary>Area under the ROC curve.</summary>
    public MetricSummary Auroc { get; }

    /// <summary>Balanced accuracy (mean per-class recall).</summary>
    public MetricSummary BalancedAccuracy { get; }

    /// <summary>F1 averaged over classes weighted by their support.</summary>
    public MetricSummary WeightedF1 { get; }

    /// <summary>Accuracy.</summary>
    public MetricSummary Accuracy { get; }

    /// <summary>Cohen's kappa with quadratic weights, for graded (ordinal) classes; null otherwise.</summary>
    public MetricSummary? QuadraticKappa { get; }

    /// <summary>The run's wall time in seconds.</summary>
    public double Seconds => Report.Cost?.Seconds ?? 0;

    /// <summary>Tiles per second of the training steps (forward, backward and update), or null for heads trained on slide vectors.</summary>
    public double? TrainingTilesPerSecond => Report.Cost?.TrainingTilesPerSecond;

    /// <summary>The process's peak resident memory in bytes when the run ended (<see cref="Runtime.ProcessMemory.PeakResidentBytes"/>).</summary>
    public long PeakResidentBytes => Report.Cost?.PeakRssBytes ?? 0;

    private static MetricSummary? Summary(MeanStd? overFolds, double? pooled) =>
        overFolds is null ? null : new MetricSummary(overFolds.Mean, overFolds.Std, pooled is double p && double.IsNaN(p) ? null : pooled);
}

/// <summary>Hands each line written to it to an <see cref="IProgress{T}"/> (the training code logs to a writer).</summary>
internal sealed class ProgressWriter(IProgress<string>? progress) : TextWriter
{
    private readonly System.Text.StringBuilder _line = new();

    public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

    public override void Write(char value)
    {
        if (value == '\n')
        {
            var text = _line.ToString().TrimEnd('\r');
            _line.Clear();
            progress?.Report(text);
        }
        else
        {
            _line.Append(value);
        }
    }

    public override void Write(string? value)
    {
        foreach (var c in value ?? "") Write(c);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && _line.Length > 0)
        {
            progress?.Report(_line.ToString());
            _line.Clear();
        }
        base.Dispose(disposing);
    }
}
