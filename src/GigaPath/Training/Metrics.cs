namespace GigaPath.Training;

/// <summary>
/// Classification metrics computed the way scikit-learn computes them (the reference's <c>finetune/metrics.py</c> and
/// <c>linear_probe/main.py</c> call <c>roc_auc_score</c>, <c>balanced_accuracy_score</c>, <c>f1_score(average="weighted")</c>
/// and <c>cohen_kappa_score(weights="quadratic")</c>), so numbers are comparable with published results.
/// Labels are class indices 0..C-1; probabilities are rows of C values.
/// </summary>
internal static class Metrics
{
    /// <summary>
    /// Area under the ROC curve for a binary problem. Scores are sorted once and tied scores form one ROC point, so the
    /// trapezoid between points gives a tied positive/negative pair half a count, exactly as <c>roc_curve</c> + <c>auc</c>.
    /// </summary>
    public static double BinaryAuroc(IReadOnlyList<bool> positive, IReadOnlyList<double> score)
    {
        if (positive.Count != score.Count)
            throw new ArgumentException($"{positive.Count} labels but {score.Count} scores");
        int nPos = positive.Count(p => p), nNeg = positive.Count - nPos;
        if (nPos == 0 || nNeg == 0)
            throw new GigaPathException($"AUROC is undefined when only one class is present ({nPos} positive, {nNeg} negative samples)");
        for (int i = 0; i < score.Count; i++)
            if (double.IsNaN(score[i]))
                throw new GigaPathException($"AUROC: score {i} is NaN");

        var order = Enumerable.Range(0, score.Count).OrderByDescending(i => score[i]).ToArray();
        double area = 0, tp = 0, fp = 0;
        int k = 0;
        while (k < order.Length)
        {
            double prevTp = tp, prevFp = fp, s = score[order[k]];
            while (k < order.Length && score[order[k]] == s)
            {
                if (positive[order[k]]) tp++; else fp++;
                k++;
            }
            area += (fp - prevFp) * (tp + prevTp) / 2;
        }
        return area / ((double)nPos * nNeg);
    }

    /// <summary>
    /// AUROC of a C-class problem: the binary AUROC of column 1 for C = 2, otherwise the unweighted mean of the C
    /// one-vs-rest AUROCs (<c>roc_auc_score(..., multi_class="ovr", average="macro")</c>). Every class must occur.
    /// </summary>
    public static double Auroc(IReadOnlyList<int> labels, IReadOnlyList<double[]> probabilities)
    {
        int c = CheckShapes(labels, probabilities);
        if (c == 2)
            return BinaryAuroc(labels.Select(l => l == 1).ToArray(), probabilities.Select(p => p[1]).ToArray());
        double sum = 0;
        for (int k = 0; k < c; k++)
        {
            int cls = k;
            if (!labels.Contains(cls))
                throw new GigaPathException($"macro AUROC is undefined: class {cls} does not occur among the {labels.Count} true labels");
            sum += BinaryAuroc(labels.Select(l => l == cls).ToArray(), probabilities.Select(p => p[cls]).ToArray());
        }
        return sum / c;
    }

    /// <summary>Row = true class, column = predicted class, over classes 0..<paramref name="classCount"/>-1.</summary>
    public static long[,] ConfusionMatrix(IReadOnlyList<int> truth, IReadOnlyList<int> predicted, int classCount)
    {
        if (truth.Count != predicted.Count)
            throw new ArgumentException($"{truth.Count} true labels but {predicted.Count} predictions");
        var m = new long[classCount, classCount];
        for (int i = 0; i < truth.Count; i++)
        {
            if ((uint)truth[i] >= classCount || (uint)predicted[i] >= classCount)
                throw new ArgumentOutOfRangeException(nameof(truth), $"sample {i}: class {truth[i]} / {predicted[i]} outside 0..{classCount - 1}");
            m[truth[i], predicted[i]]++;
        }
        return m;
    }

    /// <summary>Mean per-class recall over the classes that occur in <paramref name="truth"/> (sklearn drops the others with a warning).</summary>
    public static double BalancedAccuracy(IReadOnlyList<int> truth, IReadOnlyList<int> predicted)
    {
        var (labels, m) = Observed(truth, predicted);
        double sum = 0;
        int counted = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            long support = RowSum(m, i);
            if (support == 0) continue;
            sum += (double)m[i, i] / support;
            counted++;
        }
        if (counted == 0) throw new GigaPathException("balanced accuracy needs at least one sample");
        return sum / counted;
    }

    public static double Accuracy(IReadOnlyList<int> truth, IReadOnlyList<int> predicted)
    {
        if (truth.Count == 0) throw new GigaPathException("accuracy needs at least one sample");
        return (double)truth.Zip(predicted).Count(p => p.First == p.Second) / truth.Count;
    }

    /// <summary>Per-class F1 averaged with the true-class support as weights; a class never predicted has F1 = 0.</summary>
    public static double WeightedF1(IReadOnlyList<int> truth, IReadOnlyList<int> predicted)
    {
        var (labels, m) = Observed(truth, predicted);
        double weighted = 0;
        long total = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            long support = RowSum(m, i), predictedCount = ColumnSum(m, i), tp = m[i, i];
            double denominator = support + predictedCount;
            double f1 = denominator == 0 ? 0 : 2.0 * tp / denominator;
            weighted += f1 * support;
            total += support;
        }
        return total == 0 ? 0 : weighted / total;
    }

    /// <summary>
    /// Cohen's kappa with quadratic weights. As in sklearn the weight of a cell is the squared distance between the
    /// positions of the two labels in the sorted list of labels that occur (in either argument), not between their values.
    /// </summary>
    public static double QuadraticKappa(IReadOnlyList<int> rater1, IReadOnlyList<int> rater2)
    {
        var (labels, m) = Observed(rater1, rater2);
        int n = labels.Length;
        double total = rater1.Count;
        if (total == 0) throw new GigaPathException("kappa needs at least one sample");
        double observed = 0, expected = 0;
        for (int i = 0; i < n; i++)
        {
            double row = RowSum(m, i);
            for (int j = 0; j < n; j++)
            {
                double w = (double)(i - j) * (i - j);
                observed += w * m[i, j];
                expected += w * row * ColumnSum(m, j) / total;
            }
        }
        // Both raters always give the same single label: sklearn returns NaN (0/0); say so explicitly.
        return expected == 0 ? double.NaN : 1 - observed / expected;
    }

    /// <summary>Index of the largest probability per row (the first on ties, like numpy's argmax).</summary>
    public static int[] ArgMax(IReadOnlyList<double[]> probabilities) =>
        probabilities.Select(p =>
        {
            int best = 0;
            for (int k = 1; k < p.Length; k++)
                if (p[k] > p[best]) best = k;
            return best;
        }).ToArray();

    /// <summary>Population mean and standard deviation (numpy's default ddof = 0, as the reference prints them).</summary>
    public static (double Mean, double Std) MeanStd(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return (double.NaN, double.NaN);
        double mean = values.Average();
        double variance = values.Sum(v => (v - mean) * (v - mean)) / values.Count;
        return (mean, Math.Sqrt(variance));
    }

    private static int CheckShapes(IReadOnlyList<int> labels, IReadOnlyList<double[]> probabilities)
    {
        if (labels.Count != probabilities.Count)
            throw new ArgumentException($"{labels.Count} labels but {probabilities.Count} probability rows");
        if (labels.Count == 0) throw new GigaPathException("AUROC needs at least one sample");
        int c = probabilities[0].Length;
        if (c < 2) throw new ArgumentException("AUROC needs at least two classes");
        if (probabilities.Any(p => p.Length != c))
            throw new ArgumentException("probability rows have different lengths");
        if (labels.Any(l => (uint)l >= c))
            throw new ArgumentOutOfRangeException(nameof(labels), $"a label lies outside 0..{c - 1}");
        return c;
    }

    /// <summary>The sorted labels occurring in either list and the confusion matrix over their positions (as sklearn builds it).</summary>
    private static (int[] Labels, long[,] Matrix) Observed(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        if (a.Count != b.Count) throw new ArgumentException($"{a.Count} labels against {b.Count}");
        var labels = a.Concat(b).Distinct().Order().ToArray();
        int[] Positions(IReadOnlyList<int> values) => values.Select(v => Array.BinarySearch(labels, v)).ToArray();
        return (labels, ConfusionMatrix(Positions(a), Positions(b), labels.Length));
    }

    private static long RowSum(long[,] m, int row)
    {
        long s = 0;
        for (int j = 0; j < m.GetLength(1); j++) s += m[row, j];
        return s;
    }

    private static long ColumnSum(long[,] m, int column)
    {
        long s = 0;
        for (int i = 0; i < m.GetLength(0); i++) s += m[i, column];
        return s;
    }
}
