namespace GigaPath.Training;

/// <summary>One cross-validation fold: indices (into the cohort) used to fit, to select the epoch, and to test.</summary>
internal sealed record Fold(int Index, int[] Train, int[] Validation, int[] Test);

/// <summary>
/// Splits a cohort into k folds. With a <c>fold</c> column the test folds are the user's; otherwise they are stratified:
/// each class's slides are shuffled (seeded) and dealt round-robin, continuing where the previous class stopped, so fold
/// sizes differ by at most one. A stratified validation subset is then taken from each fold's training part.
/// </summary>
internal static class FoldPlan
{
    public static int[] AssignTestFolds(IReadOnlyList<int> classes, int folds, int seed)
    {
        var assignment = new int[classes.Count];
        int next = 0;
        foreach (var cls in classes.Distinct().Order())
        {
            var members = Enumerable.Range(0, classes.Count).Where(i => classes[i] == cls).ToList();
            new DeterministicRandom(seed, 1, cls).Shuffle(members);
            foreach (var i in members)
            {
                assignment[i] = next;
                next = (next + 1) % folds;
            }
        }
        return assignment;
    }

    /// <summary>Takes round(fraction × n_c) (at least one when a class has two or more) of each class for validation.</summary>
    public static (int[] Train, int[] Validation) SplitValidation(int[] trainPool, IReadOnlyList<int> classes, double fraction, int seed, int fold)
    {
        if (fraction <= 0) return (trainPool, []);
        var validation = new List<int>();
        foreach (var cls in trainPool.Select(i => classes[i]).Distinct().Order())
        {
            var members = trainPool.Where(i => classes[i] == cls).ToList();
            new DeterministicRandom(seed, 2, fold, cls).Shuffle(members);
            int take = (int)Math.Round(members.Count * fraction, MidpointRounding.AwayFromZero);
            if (take == 0 && members.Count >= 2) take = 1;
            take = Math.Min(take, members.Count - 1);
            validation.AddRange(members.Take(take));
        }
        var valSet = validation.ToHashSet();
        return (trainPool.Where(i => !valSet.Contains(i)).ToArray(), validation.Order().ToArray());
    }

    public static List<Fold> Build(IReadOnlyList<int> classes, int[] testFold, int folds, double valFraction, int seed)
    {
        var result = new List<Fold>();
        for (int k = 0; k < folds; k++)
        {
            var test = Enumerable.Range(0, classes.Count).Where(i => testFold[i] == k).ToArray();
            var pool = Enumerable.Range(0, classes.Count).Where(i => testFold[i] != k).ToArray();
            var (train, val) = SplitValidation(pool, classes, valFraction, seed, k);
            result.Add(new Fold(k, train, val, test));
        }
        return result;
    }
}
