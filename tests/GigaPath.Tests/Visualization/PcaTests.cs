using GigaPath.Training;
using GigaPath.Visualization;
using NUnit.Framework;

namespace GigaPath.Tests.Visualization;

public class PcaTests
{
    /// <summary>Rows spread mostly along one direction, less along a second, little along the rest.</summary>
    private static float[] Elongated(int n, int d, int seed, out double[] axis1, out double[] axis2)
    {
        var rng = new DeterministicRandom(seed);
        double U() => (rng.NextUInt64() >> 11) * (1.0 / (1UL << 53)) - 0.5;
        axis1 = new double[d]; axis2 = new double[d];
        axis1[0] = 0.6; axis1[1] = -0.8;
        axis2[2] = 1;
        var x = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            double a = 10 * U(), b = 3 * U();
            for (int j = 0; j < d; j++) x[i * d + j] = (float)(5 + a * axis1[j] + b * axis2[j] + 0.05 * U());
        }
        return x;
    }

    [Test]
    public void FindsTheDominantDirectionsWithAFixedSign()
    {
        var x = Elongated(200, 6, 1, out var a1, out var a2);
        var pca = Pca.Fit(x, 200, 6, 3);
        // sign convention: the largest-magnitude entry is positive, so axis 1 comes out as -(0.6, -0.8) = (-0.6, 0.8)
        Assert.That(pca.Components[0][1], Is.EqualTo(0.8).Within(1e-3));
        Assert.That(pca.Components[0][0], Is.EqualTo(-0.6).Within(1e-3));
        Assert.That(Math.Abs(pca.Components[1][2]), Is.EqualTo(1).Within(1e-3));
        Assert.That(pca.Variance[0], Is.GreaterThan(pca.Variance[1]));
        Assert.That(pca.Variance[1], Is.GreaterThan(pca.Variance[2]));
        // the variance of the projections equals the eigenvalue (sample variance, n - 1)
        var p0 = pca.Component(0);
        double mean = p0.Average(v => (double)v);
        Assert.That(mean, Is.EqualTo(0).Within(1e-4));
        Assert.That(p0.Sum(v => (v - mean) * (v - mean)) / 199, Is.EqualTo(pca.Variance[0]).Within(1e-3 * pca.Variance[0]));
    }

    [Test]
    public void GramAndCovarianceRoutesAgree()
    {
        // 5 rows of width 8 takes the Gram route; padding the same rows with zero columns to 3 wide... compare instead
        // against the covariance route on the same data duplicated (same directions, same projections up to scale).
        var x = Elongated(5, 8, 2, out _, out _);
        var gram = Pca.Fit(x, 5, 8, 3);
        var doubled = x.Concat(x).ToArray();
        var cov = Pca.Fit(doubled, 10, 8, 3);
        for (int k = 0; k < 3; k++)
            for (int j = 0; j < 8; j++)
                Assert.That(gram.Components[k][j], Is.EqualTo(cov.Components[k][j]).Within(1e-6), $"component {k}, entry {j}");
        for (int i = 0; i < 5 * 3; i++)
            Assert.That(gram.Projected[i], Is.EqualTo(cov.Projected[i]).Within(1e-4));
    }

    [Test]
    public void MinMaxScalesEachColumnToUnitRange()
    {
        var scaled = Pca.MinMaxColumns([1, 10, 3, 10, 5, 10], 3, 2);
        Assert.That(scaled, Is.EqualTo(new float[] { 0, 0, 0.5f, 0, 1, 0 }));
    }

    [Test]
    public void RanksShareTies()
    {
        Assert.That(FeatureMaps.Ranks([5f, 1f, 5f, 3f]), Is.EqualTo(new[] { 2.5f / 3, 0f, 2.5f / 3, 1f / 3 }));
    }
}
