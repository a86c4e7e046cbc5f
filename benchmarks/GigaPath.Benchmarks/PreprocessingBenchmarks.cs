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

/// <summary>The Pillow-exact bicubic resampler alone: the 2× upsample of a 128 px tile and the 512 → 256 downsample slide tiling uses.</summary>
public class ResampleBenchmarks
{
    [Params(128, 512)]
    public int Source { get; set; }

    private RgbImage _image = null!;

    [GlobalSetup]
    public void Setup()
    {
        var pixels = new byte[Source * Source * 3];
        new Random(1).NextBytes(pixels);
        _image = new RgbImage(Source, Source, pixels);
        CaseRecords.Set(this, nameof(ResizeBicubicTo256), new CaseRecord { ItemsPerOp = 1, ItemName = "images" });
    }

    [Benchmark]
    public int ResizeBicubicTo256() => PillowResample.ResizeBicubic(_image, 256, 256).Pixels[0];
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
