using System.Globalization;
using System.Text;
using GigaPath.Training;
using GigaPath.Weights;
using static TorchSharp.torch;

namespace GigaPath.Tests.Training;

/// <summary>
/// A learnable cohort made up in the test: slides of 20-60 tiles on a grid, 32-d tile features drawn around three
/// background centres; a positive slide also holds a compact region (the tiles nearest one anchor tile) whose features
/// come from a distinct "lesion" centre. Label 1 = the region is present.
/// </summary>
public sealed class SyntheticCohort
{
    public const int Dim = 32;
    public string Root { get; }
    public string FeaturesDir => Path.Combine(Root, "features");
    public string LabelsPath => Path.Combine(Root, "labels.csv");
    public IReadOnlyList<(string Id, int Label)> Slides { get; }

    private SyntheticCohort(string root, IReadOnlyList<(string, int)> slides)
    {
        Root = root;
        Slides = slides;
    }

    /// <summary>
    /// <paramref name="classes"/> = 2: label 1 = lesion present. More classes: label c > 0 = a lesion from centre c,
    /// label 0 = none. <paramref name="slideEmbedding"/> also stores a 'slide_embedding' (the tile mean, 2x scaled).
    /// </summary>
    public static SyntheticCohort Create(int slides = 48, int seed = 7, bool shuffleLabels = false, int minTiles = 20, int maxTiles = 60,
        int classes = 2, bool slideEmbedding = false)
    {
        var root = FixturePaths.TempDir("gigapath-cohort");
        Directory.CreateDirectory(Path.Combine(root, "features"));
        var rng = new DeterministicRandom(seed);
        var background = Enumerable.Range(0, 3).Select(_ => Gaussian(rng, Dim, 1.5)).ToArray();
        var lesions = Enumerable.Range(0, classes).Select(_ => Gaussian(rng, Dim, 1.5)).ToArray();
        var list = new List<(string, int)>();
        for (int s = 0; s < slides; s++)
        {
            int label = s % classes;
            int n = minTiles + rng.Next(maxTiles - minTiles + 1);
            var cells = new DeterministicRandom(seed, 11, s).Permutation(100).Take(n).ToArray();
            var coords = cells.SelectMany(c => new long[] { c % 10 * 256L, c / 10 * 256L }).ToArray();
            var features = new float[n * Dim];
            int anchor = rng.Next(n);
            var nearest = Enumerable.Range(0, n)
                .OrderBy(i => Math.Abs(cells[i] % 10 - cells[anchor] % 10) + Math.Abs(cells[i] / 10 - cells[anchor] / 10)).ThenBy(i => i)
                .Take(Math.Max(4, n / 6)).ToHashSet();
            for (int i = 0; i < n; i++)
            {
                var centre = label > 0 && nearest.Contains(i) ? lesions[label] : background[rng.Next(3)];
                var noise = Gaussian(rng, Dim, 1.0);
                for (int d = 0; d < Dim; d++) features[i * Dim + d] = (float)(centre[d] + noise[d]);
            }
            var id = $"slide_{s:D3}";
            using var scope = NewDisposeScope();
            var tensors = new Dictionary<string, Tensor>
            {
                ["embeddings"] = tensor(features, [n, Dim]),
                ["coords"] = tensor(coords, [n, 2]),
            };
            if (slideEmbedding) tensors["slide_embedding"] = tensors["embeddings"].mean([0L]).mul(2).unsqueeze(0);
            SafeTensorsWriter.Write(Path.Combine(root, "features", id + ".safetensors"), tensors);
            list.Add((id, label));
        }
        int[]? folds = null;
        if (shuffleLabels)
        {
            // Labels independent of the content: within each true class, half of the slides get each label. Folds are
            // dealt within each (true class, new label) cell so that no fold's training part carries a residual
            // correlation between label and lesion that its test part lacks (which would push AUROC below 0.5).
            var relabelled = list.ToArray();
            folds = new int[list.Count];
            for (int c = 0; c < classes; c++)
            {
                var members = Enumerable.Range(0, list.Count).Where(i => list[i].Item2 == c).ToList();
                new DeterministicRandom(seed, 99, c).Shuffle(members);
                for (int k = 0; k < members.Count; k++)
                    relabelled[members[k]] = (list[members[k]].Item1, (k + c) % classes);
                for (int label = 0; label < classes; label++)
                {
                    var cell = members.Where(i => relabelled[i].Item2 == label).ToList();
                    for (int k = 0; k < cell.Count; k++) folds[cell[k]] = k % ShuffledFolds;
                }
            }
            list = relabelled.ToList();
        }
        var sb = new StringBuilder(folds is null ? "slide_id,label\n" : "slide_id,label,fold\n");
        for (int i = 0; i < list.Count; i++)
            sb.Append(CultureInfo.InvariantCulture, $"{list[i].Item1},{list[i].Item2}{(folds is null ? "" : $",{folds[i]}")}\n");
        File.WriteAllText(Path.Combine(root, "labels.csv"), sb.ToString());
        return new SyntheticCohort(root, list);
    }

    /// <summary>Folds written into the labels CSV of a shuffled-label cohort.</summary>
    public const int ShuffledFolds = 4;

    public void Delete()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }

    private static double[] Gaussian(DeterministicRandom rng, int n, double scale)
    {
        var v = new double[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = (rng.NextUInt64() >> 11) * (1.0 / (1UL << 53)), u2 = (rng.NextUInt64() >> 11) * (1.0 / (1UL << 53));
            v[i] = scale * Math.Sqrt(-2 * Math.Log(1 - u1)) * Math.Cos(2 * Math.PI * u2);
        }
        return v;
    }
}
