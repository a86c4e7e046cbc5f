namespace GigaPath.Training;

/// <summary>Per-class loss weights: "balanced" gives class c the weight n / (C · n_c) (scikit-learn's meaning), "none" 1.</summary>
internal static class ClassWeights
{
    public static double[] Compute(IEnumerable<int> labels, int classCount, string mode)
    {
        var counts = new int[classCount];
        int n = 0;
        foreach (var l in labels) { counts[l]++; n++; }
        if (mode == "none") return Enumerable.Repeat(1.0, classCount).ToArray();
        return counts.Select(c => c == 0 ? 0.0 : (double)n / (classCount * c)).ToArray();
    }
}
