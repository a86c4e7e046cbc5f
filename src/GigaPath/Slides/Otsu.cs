namespace GigaPath.Slides;

/// <summary>Otsu's threshold on an integer histogram.</summary>
internal static class Otsu
{
    /// <summary>
    /// The bin t that maximises the between-class variance of {values ≤ t} and {values &gt; t}, with the two class
    /// means; null when every value falls in one bin (nothing to separate). Ties keep the lowest t.
    /// </summary>
    public static (int Threshold, double LowMean, double HighMean)? Threshold(ReadOnlySpan<long> histogram)
    {
        double total = 0, sumAll = 0;
        for (int i = 0; i < histogram.Length; i++)
        {
            total += histogram[i];
            sumAll += (double)i * histogram[i];
        }
        double w0 = 0, sum0 = 0, best = -1;
        (int, double, double)? result = null;
        for (int t = 0; t < histogram.Length - 1; t++)
        {
            w0 += histogram[t];
            sum0 += (double)t * histogram[t];
            double w1 = total - w0;
            if (w0 == 0) continue;
            if (w1 == 0) break;
            double m0 = sum0 / w0, m1 = (sumAll - sum0) / w1;
            double between = w0 * w1 * (m0 - m1) * (m0 - m1);
            if (between > best)
            {
                best = between;
                result = (t, m0, m1);
            }
        }
        return result;
    }
}
