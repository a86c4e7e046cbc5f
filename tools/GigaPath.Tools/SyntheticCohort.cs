using System.Globalization;
using GigaPath.IO;
using GigaPath.Models.Slide;

namespace GigaPath.Tools;

/// <summary>
/// A labelled cohort of synthetic tile-feature files for measuring fine-tuning at real sizes without patient data:
/// standard-normal 1536-d features (seeded), tiles on a square grid one tile (256 px) apart, labels alternating
/// between two classes. Features carry no signal; only time and memory mean anything on it.
/// </summary>
internal static class SyntheticCohort
{
    public static void Write(string dir, int slides, int tiles, int dim, int seed)
    {
        if (slides < 2 || tiles < 1) throw new GigaPathException("make-synthetic-cohort: need at least 2 slides of 1 tile");
        var features = Path.Combine(dir, "features");
        Directory.CreateDirectory(features);
        var random = new Random(seed);
        var labels = new List<string> { "slide_id,label" };
        int side = (int)Math.Ceiling(Math.Sqrt(tiles));
        for (int s = 0; s < slides; s++)
        {
            var values = new float[(long)tiles * dim];
            for (long i = 0; i < values.LongLength; i++) values[i] = (float)Normal(random);
            var coords = new double[2L * tiles];
            for (int i = 0; i < tiles; i++)
            {
                coords[2 * i] = (i % side) * 256.0;
                coords[2 * i + 1] = (i / side) * 256.0;
            }
            string id = $"synthetic_{s:D3}";
            TileFeatureFile.WriteSafetensors(Path.Combine(features, id + ".safetensors"),
                new TileFeatures(values, tiles, dim, coords, new Dictionary<string, object>(), id));
            labels.Add($"{id},{(s % 2 == 0 ? "a" : "b")}");
        }
        File.WriteAllLines(Path.Combine(dir, "labels.csv"), labels);
    }

    /// <summary>Box-Muller: one standard-normal draw.</summary>
    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    public static int Parse(string value, string name) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0
            ? v : throw new GigaPathException($"{name}: expected a positive integer, got '{value}'");
}
