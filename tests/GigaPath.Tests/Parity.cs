using NUnit.Framework;

namespace GigaPath.Tests;

/// <summary>
/// The one tolerance for comparisons with the reference fixtures: 1e-5 absolute, float32 throughout. The fixtures'
/// own float32-vs-float64 noise is 2e-7 to 3.5e-6 (their READMEs); a bug of any consequence misses by 1e-3 or more.
/// Every check prints "parity: ..." with the measured difference, which is where the README's table comes from.
/// </summary>
internal static class Parity
{
    public const double Atol = 1e-5;

    /// <summary>Prints and asserts |ours - reference| ≤ <see cref="Atol"/> (NaN fails).</summary>
    public static void Check(string what, double maxAbsDiff)
    {
        TestContext.Out.WriteLine($"parity: {what}: max |diff| {maxAbsDiff:E2}");
        Assert.That(maxAbsDiff, Is.Not.NaN.And.LessThanOrEqualTo(Atol), what);
    }
}
