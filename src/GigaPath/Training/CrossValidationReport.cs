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
/// What <c>gigapath finetune</c> writes to <c>report.json</c>: mean and (population) standard deviation over folds of
/// each metric, the pooled out-of-fold metrics, and every fold's numbers, history and checkpoint.
/// </summary>
internal sealed record CrossValidationReport(
    string Task, string Head, IReadOnlyList<string> Classes, bool Graded, int Slides, int Seed,
    MeanStd Auroc, MeanStd BalancedAccuracy, MeanStd WeightedF1, MeanStd Accuracy, MeanStd? QuadraticKappa,
    ClassificationMetrics Pooled, IReadOnlyList<FoldReport> Folds, IReadOnlyDictionary<string, string> Options, string Engine)
{
    [JsonIgnore] public IReadOnlyList<OutOfFoldPrediction> Predictions { get; init; } = [];

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);
}
