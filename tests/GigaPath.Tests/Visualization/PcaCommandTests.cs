using GigaPath.Imaging;
using GigaPath.IO;
using GigaPath.Training;
using GigaPath.Visualization;
using GigaPath.Weights;
using NUnit.Framework;
using SkiaSharp;
using static TorchSharp.torch;
using GigaPath.Models.Slide;

namespace GigaPath.Tests.Visualization;

public class PcaCommandTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("gigapath-pca");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Error) Cli(params string[] args)
    {
        var run = GigaPath.Tests.Cli.CliInvocation.Run(args);
        return (run.ExitCode, run.Error);
    }

    /// <summary>A 12x8 grid of 256-px tiles whose features are three clusters laid out as vertical stripes.</summary>
    private string StripedSlide(bool withCoords = true)
    {
        var rng = new DeterministicRandom(3);
        var coords = new List<double>();
        var features = new List<float>();
        for (int gy = 0; gy < 8; gy++)
            for (int gx = 0; gx < 12; gx++)
            {
                coords.Add(1024 + gx * 256); coords.Add(512 + gy * 256);
                int stripe = gx / 4;
                for (int d = 0; d < 16; d++)
                    features.Add((d == stripe ? 6f : 0f) + (d == 3 + stripe ? 2f * gy / 8 : 0f) + (float)((rng.NextUInt64() >> 40) / (double)(1 << 24)) * 0.2f);
            }
        var path = Path.Combine(_dir, "slide.safetensors");
        TileFeatureFile.WriteSafetensors(path, new TileFeatures(features.ToArray(), 96, 16, withCoords ? coords.ToArray() : null, new Dictionary<string, object>()));
        return path;
    }

    [Test]
    public void RgbMapPaintsEachTileWithItsPcaColour()
    {
        var features = StripedSlide();
        var png = Path.Combine(_dir, "pca.png");
        var (code, error) = Cli("pca", "--features", features, "--out", png, "--tile-pixels", "10");
        Assert.That(code, Is.EqualTo(0), error);
        var tiles = TileFeatureFile.Read(features);
        var (_, pca, layout) = FeatureMaps.PcaRgb(tiles, new SlideMapOptions { TilePixels = 10 });
        var scaled = Pca.MinMaxColumns(pca.Projected, pca.Count, 3);
        using var bitmap = SKBitmap.Decode(png);
        Assert.That((bitmap.Width, bitmap.Height), Is.EqualTo((140, 100)));
        for (int i = 0; i < tiles.Count; i++)
        {
            var (x0, y0, _, _) = layout.Rect((float)tiles.Coords![2 * i], (float)tiles.Coords[2 * i + 1]);
            var expected = new SKColor(Colormap.Channel(scaled[3 * i]), Colormap.Channel(scaled[3 * i + 1]), Colormap.Channel(scaled[3 * i + 2]));
            Assert.That(bitmap.GetPixel(x0 + 5, y0 + 5), Is.EqualTo(expected), $"tile {i}");
        }
        // stripes: the three clusters get three clearly different colours
        var c0 = bitmap.GetPixel(15, 15); var c1 = bitmap.GetPixel(55, 15); var c2 = bitmap.GetPixel(95, 15);
        Assert.That(c0, Is.Not.EqualTo(c1));
        Assert.That(c1, Is.Not.EqualTo(c2));
        Assert.That(bitmap.GetPixel(2, 2), Is.EqualTo(SKColors.White), "margin");
    }

    [Test]
    public void ComponentAndScalarHeatmapsOverAThumbnail()
    {
        var features = StripedSlide();
        var thumb = Path.Combine(_dir, "thumb.png");
        File.WriteAllBytes(thumb, ImageDecoder.EncodePng(Canvas.Filled(256, 160, (230, 220, 235))));
        var png = Path.Combine(_dir, "pc1.png");
        var (code, error) = Cli("pca", "--features", features, "--out", png, "--component", "1", "--thumbnail", thumb, "--slide-size", "4096x2560");
        Assert.That(code, Is.EqualTo(0), error);
        using (var bitmap = SKBitmap.Decode(png))
        {
            Assert.That(bitmap.Width, Is.EqualTo(256 + SlideMap.ColorBarWidth));
            Assert.That(bitmap.GetPixel(2, 2), Is.EqualTo(new SKColor(230, 220, 235)), "thumbnail outside the tiles");
            // tile (1024, 512) at scale 1/16 starts at pixel (64, 32)
            Assert.That(bitmap.GetPixel(66, 34), Is.Not.EqualTo(new SKColor(230, 220, 235)));
        }

        var scalarCsv = Path.Combine(_dir, "values.csv");
        File.WriteAllText(scalarCsv, "tile,x,y,attention\n0,1024,512,0.1\n1,1280,512,0.9\n");
        var heat = Path.Combine(_dir, "heat.png");
        (code, error) = Cli("pca", "--scalar", scalarCsv, "--out", heat, "--tile-pixels", "4");
        Assert.That(code, Is.EqualTo(0), error);
        using var map = SKBitmap.Decode(heat);
        Assert.That(map.GetPixel(5, 5), Is.EqualTo(new SKColor(0x44, 0x01, 0x54)));
        Assert.That(map.GetPixel(9, 5), Is.EqualTo(new SKColor(0xFD, 0xE7, 0x25)));
    }

    [Test]
    public void BadInputsAreRefused()
    {
        var noCoords = StripedSlide(withCoords: false);
        var (code, error) = Cli("pca", "--features", noCoords, "--out", Path.Combine(_dir, "a.png"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error, Does.Contain("no 'coords'"));

        var features = StripedSlide();
        (code, error) = Cli("pca", "--features", features, "--out", Path.Combine(_dir, "b.png"), "--component", "0");
        Assert.That((code, error.Contains("--component")), Is.EqualTo((2, true)), error);

        var csv = Path.Combine(_dir, "short.csv");
        File.WriteAllText(csv, "x,y,v\n0,0,1\n");
        (code, error) = Cli("pca", "--features", features, "--scalar", csv, "--out", Path.Combine(_dir, "c.png"));
        Assert.That((code, error.Contains("1 values but")), Is.EqualTo((2, true)), error);

        (code, error) = Cli("pca", "--out", Path.Combine(_dir, "d.png"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(Directory.GetFiles(_dir, "*.png"), Is.Empty, "nothing written on errors");
    }

    /// <summary>197 tokens of one tile: a background cluster on the left half, three foreground clusters on the right.</summary>
    private string TokensFile(out float[] row)
    {
        const int d = 24;
        var rng = new DeterministicRandom(5);
        row = new float[197 * d];
        for (int t = 1; t < 197; t++)
        {
            int p = t - 1, col = p % 14, r = p / 14;
            bool fg = col >= 7;
            for (int j = 0; j < d; j++)
            {
                float v = (float)((rng.NextUInt64() >> 40) / (double)(1 << 24)) * 0.1f;
                if (!fg && j == 0) v += 10;
                if (fg && j == 1 + r / 5) v += 3;
                row[t * d + j] = v;
            }
        }
        var path = Path.Combine(_dir, "tokens.safetensors");
        using var scope = NewDisposeScope();
        var t2 = stack([zeros(197, d), tensor(row, [197, d])]);
        SafeTensorsWriter.Write(path, new Dictionary<string, Tensor> { ["tokens"] = t2 });
        return path;
    }

    [Test]
    public void TokenMapSplitsForegroundAndPaintsIt()
    {
        var tokens = TokensFile(out var row);
        var tile = Path.Combine(_dir, "tile.png");
        var tileImage = new RgbImage(256, 256);
        for (int i = 0; i < tileImage.Pixels.Length; i += 3) { tileImage.Pixels[i] = 240; tileImage.Pixels[i + 1] = 120; tileImage.Pixels[i + 2] = 180; }
        File.WriteAllBytes(tile, ImageDecoder.EncodePng(tileImage));
        var png = Path.Combine(_dir, "tokens.png");

        // the background cluster has the large first component here, so foreground is the smaller side (the notebook default)
        var result = TokenPcaMap.Render(row, 24, tileImage);
        Assert.That(result.Foreground.Count(f => f), Is.EqualTo(98));
        var expectedFg = result.Foreground.Select((f, p) => p % 14 >= 7).ToArray();
        var flipped = expectedFg.Select(f => !f).ToArray();
        Assert.That(result.Foreground, Is.EqualTo(expectedFg).Or.EqualTo(flipped));

        var (code, error) = Cli("pca-tile", "--tokens", tokens, "--index", "1", "--image", tile, "--out", png);
        Assert.That(code, Is.EqualTo(0), error);
        using var bitmap = SKBitmap.Decode(png);
        Assert.That((bitmap.Width, bitmap.Height), Is.EqualTo((3 * 224 + 2 * 8, 224)));
        Assert.That(bitmap.GetPixel(100, 100), Is.EqualTo(new SKColor(240, 120, 180)), "the tile");
        int gridX = 224 + 8;
        for (int p = 0; p < 196; p++)
        {
            var c = bitmap.GetPixel(gridX + (p % 14) * 16 + 8, (p / 14) * 16 + 8);
            Assert.That(c == SKColors.Black, Is.EqualTo(!result.Foreground[p]), $"token {p}");
        }

        (code, error) = Cli("pca-tile", "--tokens", tokens, "--index", "2", "--image", tile, "--out", png);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(error, Does.Contain("--index 2").And.Contain("outside 0..1"));
    }
}
