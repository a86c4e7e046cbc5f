namespace GigaPath.Training;

/// <summary>The metrics reported for one set of predictions (a test fold, or all out-of-fold predictions pooled).</summary>
internal sealed record ClassificationMetrics(
    double Auroc, double BalancedAccuracy, double WeightedF1, double Accuracy, double? QuadraticKappa, long[][] ConfusionMatrix)
{
    public static ClassificationMetrics Compute(IReadOnlyList<int> labels, IReadOnlyList<double[]> probabilities, int classCount, bool graded)
    {
        var predicted = Metrics.ArgMax(probabilities);
        var cm = Metrics.ConfusionMatrix(labels, predicted, classCount);
        var rows = Enumerable.Range(0, classCount).Select(i => Enumerable.Range(0, classCount).Select(j => cm[i, j]).ToArray()).ToArray();
        double? kappa = null;
        if (graded)
        {
            var k = Metrics.QuadraticKappa(labels, predicted);
            kappa = double.IsNaN(k) ? null : k;
        }
        return new ClassificationMetrics(
            Metrics.Auroc(labels, probabilities),
            Metrics.BalancedAccuracy(labels, predicted),
            Metrics.WeightedF1(labels, predicted),
            Metrics.Accuracy(labels, predicted),
            kappa,
            rows);
    }
}
