using System.Globalization;
using System.Text;
using GigaPath.Weights;

namespace GigaPath.Training;

/// <summary>Writes a cross-validation run's outputs: report.json, report.md, predictions.csv and fold_k/report.md.</summary>
internal static class ReportWriter
{
    public static void WriteAll(CrossValidationReport report, string outDir)
    {
        AtomicFile.WriteAllText(Path.Combine(outDir, "report.json"), report.ToJson());
        AtomicFile.WriteAllText(Path.Combine(outDir, "report.md"), Overall(report));
        AtomicFile.WriteAllText(Path.Combine(outDir, "predictions.csv"), PredictionsCsv(report));
        foreach (var f in report.Folds)
            AtomicFile.WriteAllText(Path.Combine(outDir, $"fold_{f.Fold}", "report.md"), FoldMarkdown(report, f));
    }

    public static string PredictionsCsv(CrossValidationReport report)
    {
        var sb = new StringBuilder();
        sb.AppendLine(Csv.Line(new[] { "slide_id", "fold", "label", "predicted" }.Concat(report.Classes.Select(c => "prob_" + c))));
        foreach (var p in report.Predictions)
            sb.AppendLine(Csv.Line(new[] { p.SlideId, Inv(p.Fold), p.Label, report.Classes[p.Predicted] }.Concat(p.Probabilities.Select(Csv.Number))));
        return sb.ToString();
    }

    public static string Overall(CrossValidationReport r)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# {r.Task}: {r.Head} head, {r.Folds.Count}-fold cross-validation");
        sb.AppendLine();
        sb.AppendLine($"{r.Slides} slides, classes {string.Join(", ", r.Classes.Select(c => $"`{c}`"))}{(r.Graded ? " (graded)" : "")}, seed {r.Seed}. {r.Engine}.");
        if (r.Cost is not null) sb.AppendLine().AppendLine($"Cost: {r.Cost}.");
        sb.AppendLine();
        sb.AppendLine("| metric | mean ± std over folds | pooled out-of-fold |");
        sb.AppendLine("|---|---|---|");
        Row(sb, "AUROC", r.Auroc, r.Pooled.Auroc);
        Row(sb, "balanced accuracy", r.BalancedAccuracy, r.Pooled.BalancedAccuracy);
        Row(sb, "weighted F1", r.WeightedF1, r.Pooled.WeightedF1);
        Row(sb, "accuracy", r.Accuracy, r.Pooled.Accuracy);
        if (r.QuadraticKappa is not null) Row(sb, "quadratic kappa", r.QuadraticKappa, r.Pooled.QuadraticKappa);
        sb.AppendLine();
        sb.AppendLine("Standard deviations are population values (ddof = 0) over folds; AUROC is macro one-vs-rest for more than two classes.");
        sb.AppendLine();
        sb.AppendLine("## Folds");
        sb.AppendLine();
        sb.AppendLine("| fold | train | val | test | AUROC | bal. acc. | weighted F1 |" + (r.Graded ? " kappa |" : "") + " weights from |");
        sb.AppendLine("|---|---|---|---|---|---|---|" + (r.Graded ? "---|" : "") + "---|");
        foreach (var f in r.Folds)
            sb.AppendLine($"| [{f.Fold}](fold_{f.Fold}/report.md) | {f.NTrain} | {f.NValidation} | {f.NTest} | {F(f.Auroc)} | {F(f.BalancedAccuracy)} | {F(f.WeightedF1)} |" +
                          (r.Graded ? $" {F(f.QuadraticKappa)} |" : "") + $" {f.Selection} |");
        sb.AppendLine();
        sb.AppendLine("## Pooled confusion matrix (rows: true class, columns: predicted)");
        sb.AppendLine();
        Confusion(sb, r.Classes, r.Pooled.ConfusionMatrix);
        sb.AppendLine();
        sb.AppendLine("## Options");
        sb.AppendLine();
        foreach (var (k, v) in r.Options) sb.AppendLine($"- `{k}`: {v}");
        return sb.ToString();
    }

    public static string FoldMarkdown(CrossValidationReport r, FoldReport f)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# {r.Task}: fold {f.Fold} ({r.Head} head)");
        sb.AppendLine();
        sb.AppendLine($"{f.NTrain} training, {f.NValidation} validation, {f.NTest} test slides. Weights: {f.Selection}; checkpoint `{f.Checkpoint}`.");
        sb.AppendLine();
        sb.AppendLine("| metric | test |");
        sb.AppendLine("|---|---|");
        sb.AppendLine($"| AUROC | {F(f.Auroc)} |");
        sb.AppendLine($"| balanced accuracy | {F(f.BalancedAccuracy)} |");
        sb.AppendLine($"| weighted F1 | {F(f.WeightedF1)} |");
        sb.AppendLine($"| accuracy | {F(f.Accuracy)} |");
        if (r.Graded) sb.AppendLine($"| quadratic kappa | {F(f.QuadraticKappa)} |");
        sb.AppendLine();
        sb.AppendLine("## Confusion matrix (rows: true class, columns: predicted)");
        sb.AppendLine();
        Confusion(sb, r.Classes, f.ConfusionMatrix);
        sb.AppendLine();
        sb.AppendLine("## Training history");
        sb.AppendLine();
        sb.AppendLine("| epoch | train loss | val loss | val AUROC | lr |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var e in f.History)
            sb.AppendLine($"| {e.Epoch} | {F(e.TrainLoss)} | {F(e.ValidationLoss)} | {F(e.ValidationAuroc)} | {e.LearningRate.ToString("E2", CultureInfo.InvariantCulture)} |");
        return sb.ToString();
    }

    private static void Row(StringBuilder sb, string name, MeanStd? m, double? pooled) =>
        sb.AppendLine($"| {name} | {F(m?.Mean)} ± {F(m?.Std)} | {F(pooled)} |");

    private static void Confusion(StringBuilder sb, IReadOnlyList<string> classes, long[][] m)
    {
        sb.AppendLine("| true \\ predicted | " + string.Join(" | ", classes) + " |");
        sb.AppendLine("|---|" + string.Concat(classes.Select(_ => "---|")));
        for (int i = 0; i < classes.Count; i++)
            sb.AppendLine($"| {classes[i]} | " + string.Join(" | ", m[i]) + " |");
    }

    private static string F(double? v) => v is null || double.IsNaN(v.Value) ? "n/a" : v.Value.ToString("F4", CultureInfo.InvariantCulture);
    private static string Inv(int v) => v.ToString(CultureInfo.InvariantCulture);
}
