using GigaPath.Imaging;
using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Visualization;
using NUnit.Framework;
using TorchSharp;

namespace GigaPath.Tests.Visualization;

/// <summary>The public map API: PCA maps and value heat maps from tile features and per-tile values, and a tile's token PCA.</summary>
public class SlideMapApiTests
{
    /// <summary>A 2 × 2 grid of 256-pixel tiles whose features vary along one direction only.</summary>
    private static TileFeatures Grid(Dictionary<string, object>? attributes = null)
    {
        var features = new float[] { 0, 0, 0, 1, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 9 };
        var coords = new double[] { 0, 0, 256, 0, 0, 256, 256, 256 };
        return new TileFeatures(features, 4, 4, coords, attributes ?? new Dictionary<string, object>(), "grid");
    }

    [Test]
    public void DrawPcaPaintsEachTileAndReportsTheComponentVariances()
    {
        var map = SlideMap.DrawPca(Grid(), new SlideMapOptions { TilePixels = 10 });
        // Bounding box 512 plus a tile of margin on each side, 10 pixels per 256.
        Assert.That((map.Image.Width, map.Image.Height), Is.EqualTo((40, 40)));
        Assert.That(map.ComponentVariances, Has.Count.EqualTo(3));
        Assert.That(map.ComponentVariances[0], Is.GreaterThan(map.ComponentVariances[1]));
        // The first component orders the tiles; min-max scaled, the first tile is 0 red and the last 255.
        Assert.That(new[] { Red(map.Image, 15, 15), Red(map.Image, 25, 25) }, Is.EquivalentTo(new byte[] { 0, 255 }));
        Assert.That(Red(map.Image, 2, 2), Is.EqualTo(255), "white margin");
    }

    [Test]
    public void OptionsAreCompletedFromTheFileAttributes()
    {
        var tiles = Grid(new Dictionary<string, object> { ["patch_size_level0"] = 512L, ["level0_dim"] = "[2048, 1024]" });
        var options = new SlideMapOptions().CompleteFrom(tiles);
        Assert.That(options.TileSize, Is.EqualTo(512));
        Assert.That(options.SlideSize, Is.EqualTo((2048.0, 1024.0)));
        Assert.That(new SlideMapOptions { TileSize = 256 }.CompleteFrom(tiles).TileSize, Is.EqualTo(256), "set values win");
        var second = SlideMap.DrawComponent(tiles, 2, new SlideMapOptions { TilePixels = 4 });
        Assert.That(second.Image.Width, Is.EqualTo(1792 * 4 / 512 + SlideMap.ColorBarWidth), "tile 512 from the attributes (one tile of margin each side), plus the colour bar");
        Assert.Throws<ArgumentOutOfRangeException>(() => SlideMap.DrawComponent(tiles, 0));
    }

    [Test]
    public void DrawValuesHeatMapsValuesReadFromCsvAndRanks()
    {
        var dir = Directory.CreateTempSubdirectory("gigapath-values-").FullName;
        try
        {
            var csv = Path.Combine(dir, "a.attention.csv");
            File.WriteAllText(csv, "tile,x,y,attention,score\n0,0,0,0.1,5\n1,256,0,0.7,1\n2,0,256,0.2,2\n");
            var values = TileValues.Read(csv);
            Assert.That(values.Name, Is.EqualTo("attention"));
            Assert.That(values.Values, Is.EqualTo(new[] { 0.1f, 0.7f, 0.2f }));
            Assert.That(values.Coords, Is.EqualTo(new[] { 0f, 0, 256, 0, 0, 256 }));
            Assert.That(TileValues.Read(csv, "score").Values, Is.EqualTo(new[] { 5f, 1, 2 }));
            Assert.That(values.ToRanks().Values, Is.EqualTo(new[] { 0f, 1, 0.5f }));

            var map = SlideMap.DrawValues(values, new SlideMapOptions { TilePixels = 10 });
            Assert.That(map.ComponentVariances, Is.Empty);
            Assert.That(map.Image.Height, Is.EqualTo(160), "at least the colour bar's height");
            Assert.That(Red(map.Image, 25, 15), Is.EqualTo(Colormap.Viridis(1).Item1), "the largest value is the top of viridis");
            Assert.That(Red(map.Image, 15, 15), Is.EqualTo(Colormap.Viridis(0).Item1), "the smallest the bottom");
            Assert.Throws<ArgumentException>(() => new TileValues([0, 0, 1], [1f, 2f]));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void TokenPcaMapReadsOneTileOfATokensFile()
    {
        var dir = Directory.CreateTempSubdirectory("gigapath-tokens-").FullName;
        try
        {
            var random = new Random(3);
            var tokens = Enumerable.Range(0, 2 * 17 * 6).Select(_ => (float)random.NextDouble()).ToArray();
            var path = Path.Combine(dir, "tokens.safetensors");
            using (var t = torch.tensor(tokens).reshape(2, 17, 6))
                GigaPath.Weights.SafeTensorsWriter.Write(path, new Dictionary<string, torch.Tensor> { ["tokens"] = t });
            var tile = new RgbImage(224, 224);
            var fromFile = TokenPcaMap.DrawFromFile(path, 1, tile);
            var inMemory = TokenPcaMap.Draw(tokens.AsSpan(17 * 6, 17 * 6).ToArray(), 6, tile);
            Assert.That(fromFile.Foreground, Is.EqualTo(inMemory.Foreground));
            Assert.That(fromFile.Foreground, Has.Count.EqualTo(16));
            Assert.That(fromFile.Grid.Pixels, Is.EqualTo(inMemory.Grid.Pixels));
            Assert.That((fromFile.Image.Width, fromFile.Image.Height), Is.EqualTo((3 * 224 + 16, 224)));
            Assert.Throws<ArgumentOutOfRangeException>(() => TokenPcaMap.DrawFromFile(path, 2, tile));
            Assert.That(Assert.Throws<GigaPathException>(() => TokenPcaMap.DrawFromFile(path, 0, tile, tensorName: "x"))!.Message, Does.Contain("no 'x' tensor"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static byte Red(RgbImage image, int x, int y) => image.Pixels[(y * image.Width + x) * 3];
}
