using BenchmarkDotNet.Attributes;
using GigaPath.Imaging;

namespace GigaPath.Benchmarks;

/// <summary>Decode + Pillow-exact resize + centre crop + normalise, on the two real tiles bundled with the tests.</summary>
public class PreprocessingBenchmarks
{
    [Params("01581x_25327y.png", "prov_normal_000_1.png")]
    public string Image { get; set; } = "";

    private byte[] _encoded = [];
    private readonly float[] _chw = new float[3 * 224 * 224];

    [GlobalSetup]
    public void Setup()
    {
        _encoded = File.ReadAllBytes(BenchPaths.Fixture("preprocess", Image));
        CaseRecords.Set(this, nameof(DecodeAndPreprocess), new CaseRecord { ItemsPerOp = 1, ItemName = "images" });
    }

    [Benchmark]
    public float DecodeAndPreprocess()
    {
        var image = ImageDecoder.Decode(_encoded, Image);
        var pre = TilePreprocessor.Default;
        pre.Normalize(pre.CenterCrop(pre.Resize(image)), _chw);
        return _chw[0];
    }
}

public static class BenchPaths
{
    /// <summary>Finds tests/GigaPath.Tests/Fixtures above the working directory or the binary.</summary>
    public static string Fixture(params string[] parts)
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(new[] { dir.FullName, "tests", "GigaPath.Tests", "Fixtures" }.Concat(parts).ToArray());
                if (File.Exists(candidate) || Directory.Exists(candidate)) return candidate;
            }
        }
        throw new FileNotFoundException("fixture not found (run from the repository): " + Path.Combine(parts));
    }
}
