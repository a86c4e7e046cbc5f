using GigaPath.Training;
using NUnit.Framework;

namespace GigaPath.Tests.Training;

/// <summary>Hand-computed cases (pairs counted by hand: a tied positive/negative pair counts one half).</summary>
public class MetricsTests
{
    private static readonly double[][] ThreeClassProbs =
    [
        [0.7, 0.2, 0.1], [0.4, 0.3, 0.3], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2], [0.1, 0.2, 0.7],
    ];
    private static readonly int[] ThreeClassLabels = [0, 0, 1, 1, 2, 2];

    [Test]
    public void BinaryAurocWithoutTies()
    {
        Assert.That(Metrics.BinaryAuroc([false, false, true, true], [0.1, 0.4, 0.35, 0.8]), Is.EqualTo(0.75).Within(1e-12));
    }

    [Test]
    public void BinaryAurocCountsTiedPairsAsHalf()
    {
        // pos {0.5, 0.9} vs neg {0.5, 0.2}: 0.5 + 1 + 1 + 1 = 3.5 of 4 pairs.
        Assert.That(Metrics.BinaryAuroc([false, true, false, true], [0.5, 0.5, 0.2, 0.9]), Is.EqualTo(0.875).Within(1e-12));
        // pos {0.8, 0.6, 0.2} vs neg {0.6, 0.6, 0.2}: 3 + (0.5 + 0.5 + 1) + 0.5 = 5.5 of 9 pairs.
        Assert.That(Metrics.BinaryAuroc([true, true, false, false, true, false], [0.8, 0.6, 0.6, 0.6, 0.2, 0.2]), Is.EqualTo(5.5 / 9).Within(1e-12));
        Assert.That(Metrics.BinaryAuroc([false, true, false, true], [0.3, 0.3, 0.3, 0.3]), Is.EqualTo(0.5).Within(1e-12));
    }

    [Test]
    public void AurocOfTwoColumnsUsesThePositiveColumn()
    {
        double[][] p = [[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]];
        Assert.That(Metrics.Auroc([0, 0, 1, 1], p), Is.EqualTo(0.75).Within(1e-12));
    }

    [Test]
    public void MulticlassAurocIsMacroOneVsRest()
    {
        // class 0: 7.5/8, class 1: 6.5/8, class 2: 6/8 -> mean 2.5/3.
        Assert.That(Metrics.Auroc(ThreeClassLabels, ThreeClassProbs), Is.EqualTo(2.5 / 3).Within(1e-12));
    }

    [Test]
    public void AurocRejectsASingleClass()
    {
        var e = Assert.Throws<GigaPathException>(() => Metrics.BinaryAuroc([true, true], [0.1, 0.2]));
        Assert.That(e!.Message, Does.Contain("only one class"));
    }

    [Test]
    public void ArgMaxTakesTheFirstOfTies()
    {
        Assert.That(Metrics.ArgMax(ThreeClassProbs), Is.EqualTo(new[] { 0, 0, 1, 2, 0, 2 }));
    }

    [Test]
    public void BalancedAccuracyWeightedF1AccuracyAndConfusion()
    {
        var predicted = Metrics.ArgMax(ThreeClassProbs);
        // recalls 2/2, 1/2, 1/2
        Assert.That(Metrics.BalancedAccuracy(ThreeClassLabels, predicted), Is.EqualTo(2.0 / 3).Within(1e-12));
        // F1: class 0 2·2/(2+3), class 1 2·1/(2+1), class 2 2·1/(2+2); equal supports
        Assert.That(Metrics.WeightedF1(ThreeClassLabels, predicted), Is.EqualTo((0.8 + 2.0 / 3 + 0.5) / 3).Within(1e-12));
        Assert.That(Metrics.Accuracy(ThreeClassLabels, predicted), Is.EqualTo(4.0 / 6).Within(1e-12));
        var cm = Metrics.ConfusionMatrix(ThreeClassLabels, predicted, 3);
        Assert.That(cm, Is.EqualTo(new long[,] { { 2, 0, 0 }, { 0, 1, 1 }, { 1, 0, 1 } }));
    }

    [Test]
    public void BalancedAccuracyIgnoresClassesWithoutTrueSamples()
    {
        // class 2 is only predicted: recall of classes 0 and 1 only -> (1/2 + 1) / 2
        Assert.That(Metrics.BalancedAccuracy([0, 0, 1], [0, 2, 1]), Is.EqualTo(0.75).Within(1e-12));
    }

    [Test]
    public void WeightedF1GivesUnpredictedClassesZero()
    {
        // class 1 never predicted: F1_0 = 2·2/(2+3) = 0.8 with support 2, F1_1 = 0 with support 1
        Assert.That(Metrics.WeightedF1([0, 0, 1], [0, 0, 0]), Is.EqualTo(0.8 * 2 / 3).Within(1e-12));
    }

    [Test]
    public void QuadraticKappaHandCases()
    {
        // binary: observed disagreement 1, expected (2·3 + 2·1)/4 = 2 -> 1 - 1/2
        Assert.That(Metrics.QuadraticKappa([0, 0, 1, 1], [0, 1, 1, 1]), Is.EqualTo(0.5).Within(1e-12));
        // The reference's own example (finetune/metrics.py __main__): observed Σ w·n = 36, expected 352/9 -> 1 - 36·9/352
        Assert.That(Metrics.QuadraticKappa([0, 2, 1, 1, 4, 5, 2, 3, 2], [0, 5, 2, 3, 2, 2, 1, 1, 4]), Is.EqualTo(0.07954545454545447).Within(1e-12));
        Assert.That(Metrics.QuadraticKappa([0, 1, 2], [0, 1, 2]), Is.EqualTo(1.0).Within(1e-12));
    }

    [Test]
    public void QuadraticKappaWeighsLabelPositionsNotValues()
    {
        // labels {0, 1, 3} are positions 0, 1, 2 (as sklearn does); with values as distances the answer would be 0.4074
        Assert.That(Metrics.QuadraticKappa([0, 1, 3, 3], [0, 3, 1, 3]), Is.EqualTo(0.6363636363636364).Within(1e-12));
    }

    [Test]
    public void MeanStdIsPopulation()
    {
        var (m, s) = Metrics.MeanStd([1.0, 2.0, 3.0, 4.0]);
        Assert.That(m, Is.EqualTo(2.5));
        Assert.That(s, Is.EqualTo(Math.Sqrt(1.25)).Within(1e-12));
    }
}
