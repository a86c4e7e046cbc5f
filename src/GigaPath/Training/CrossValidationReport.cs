using System.Text.Json;
using System.Text.Json.Serialization;

namespace GigaPath.Training;

internal sealed record MeanStd(double Mean, double Std)
{
    public static MeanStd Of(IEnumerable<double> values)
    {
        var (m, s) = Metrics.MeanStd(values.ToList());
        return new MeanStd(m, s);
    }
}

/// <summary>One slide's out-of-fold prediction.</summary>
internal sealed record OutOfFoldPrediction(string SlideId, int Fold, string Label, int ClassIndex, int Predicted, double[] Probabilities);

internal sealed record FoldReport(
    int Fold, int NTrain, int NValidation, int NTest,
    double Auroc, double BalancedAccuracy, double WeightedF1, double Accuracy, double? QuadraticKappa, long[][] ConfusionMatrix,
    int SelectedEpoch, string Selection, int EpochsTrained, string Checkpoint, IReadOnlyList<EpochRecord> History);

/// <summary>
/// What a run cost: its wall time, the tiles its training steps took and the seconds they took, and the process's peak
/// resident memory (VmHWM) when the run ended - the largest step decides it.
/// </summary>
internal sealed record RunCost(double Seconds, long TrainingTiles, double TrainingSeconds, long PeakRssBytes)
{
    public double? TrainingTilesPerSecond => TrainingTiles > 0 && TrainingSeconds > 0 ? TrainingTiles / TrainingSeconds : null;

    /// <summary>"S s, R training tiles/s, peak RSS M MiB" (the tiles/s part only where tiles were trained).</summary>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{Seconds:F1} s{(TrainingTilesPerSecond is double r ? $", {r:F1} training tiles/s" : "")}, peak RSS {PeakRssBytes / 1048576.0:F0} MiB");
}

/// <summary>
/// What <c>gigapath finetune</c> writes to <c>report.json</c>: mean and (population) standard deviation over folds of
/// each metric, the pooled out-of-fold metrics, and every fold's numbers, history and checkpoint.
/// </summary>
internal sealed record CrossValidationReport(
    string Task, string Head, IReadOnlyList<string> Classes, bool Graded, int Slides, int Seed,
    MeanStd Auroc, MeanStd BalancedAccuracy, MeanStd WeightedF1, MeanStd Accuracy, MeanStd? QuadraticKappa,
    ClassificationMetrics Pooled, IReadOnlyList<FoldReport> Folds, IReadOnlyDictionary<string, string> Options, string Engine)
{
    [JsonIgnore] public IReadOnlyList<OutOfFoldPrediction> Predictions { get; init; } = [];

    /// <summary>What the run cost (<c>cost</c> in report.json).</summary>
    public RunCost? Cost { get; init; }

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);
}
