using GigaPath.Imaging;
using GigaPath.IO;
using GigaPath.Visualization;
using NUnit.Framework;
using SkiaSharp;

namespace GigaPath.Tests.Visualization;

/// <summary>Geometry of the slide maps: every tile's colour lands at its coordinates (read back from the PNG with SkiaSharp).</summary>
public class SlideMapTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("gigapath-viz");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    internal static SKColor Pixel(string png, int x, int y)
    {
        using var bitmap = SKBitmap.Decode(png);
        return bitmap.GetPixel(x, y);
    }

    internal static (int Width, int Height) Size(string png)
    {
        using var bitmap = SKBitmap.Decode(png);
        return (bitmap.Width, bitmap.Height);
    }

    private string Save(RgbImage image, string name)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, ImageDecoder.EncodePng(image));
        return path;
    }

    private static readonly float[] Coords = [512, 256, 768, 256, 512, 768, 1280, 1024];
    private static readonly byte[] Colours = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30];

    [Test]
    public void ColoursLandAtTheirTilesOnWhite()
    {
        var image = SlideMap.RenderColors(Coords, Colours, new SlideMapOptions { TilePixels = 10 }, out var layout);
        var png = Save(image, "rgb.png");
        Assert.That(layout.TileSize, Is.EqualTo(256), "tile size inferred from the grid step");
        // origin = (min - one tile), 10 px per 256-px tile
        Assert.That((layout.OriginX, layout.OriginY), Is.EqualTo((256.0, 0.0)));
        // one tile of margin on each side: x spans 256 .. 1280 + 2·256, y spans 0 .. 1024 + 2·256
        Assert.That(Size(png), Is.EqualTo((60, 60)));
        for (int i = 0; i < 4; i++)
        {
            int px = (int)((Coords[2 * i] - 256) / 256 * 10), py = (int)(Coords[2 * i + 1] / 256 * 10);
            foreach (var (dx, dy) in new[] { (0, 0), (9, 9), (5, 2) })
                Assert.That(Pixel(png, px + dx, py + dy), Is.EqualTo(new SKColor(Colours[3 * i], Colours[3 * i + 1], Colours[3 * i + 2])), $"tile {i} +({dx},{dy})");
        }
        Assert.That(Pixel(png, 0, 0), Is.EqualTo(SKColors.White));
        Assert.That(Pixel(png, 25, 5), Is.EqualTo(SKColors.White), "between tiles");
        Assert.That(Pixel(png, 30, 10), Is.EqualTo(SKColors.White), "just right of tile 1");
    }

    [Test]
    public void OverAThumbnailTilesAreScaledToTheSlide()
    {
        // A 100x50 thumbnail of a 2000x1000 level-0 slide: scale 0.05, tiles of 256 px -> 12.8 px.
        var thumb = Canvas.Filled(100, 50, (200, 200, 200));
        var image = SlideMap.RenderColors([1000, 500], [255, 0, 0],
            new SlideMapOptions { Thumbnail = thumb, SlideSize = (2000, 1000), TileSize = 256, Alpha = 1 }, out var layout);
        var png = Save(image, "thumb.png");
        Assert.That(layout.Scale, Is.EqualTo(0.05));
        Assert.That(Size(png), Is.EqualTo((100, 50)));
        Assert.That(layout.Rect(1000, 500), Is.EqualTo((50, 25, 62, 37)));
        Assert.That(Pixel(png, 50, 25), Is.EqualTo(new SKColor(255, 0, 0)));
        Assert.That(Pixel(png, 61, 36), Is.EqualTo(new SKColor(255, 0, 0)));
        Assert.That(Pixel(png, 62, 37), Is.EqualTo(new SKColor(200, 200, 200)));
        Assert.That(Pixel(png, 49, 24), Is.EqualTo(new SKColor(200, 200, 200)));
    }

    [Test]
    public void TranslucentTilesBlendWithTheThumbnail()
    {
        var thumb = Canvas.Filled(64, 64, (0, 0, 200));
        var image = SlideMap.RenderColors([0, 0], [255, 0, 0], new SlideMapOptions { Thumbnail = thumb, SlideSize = (512, 512), TileSize = 256 }, out _);
        Assert.That(image.Pixels[..3], Is.EqualTo(new byte[] { 153, 0, 80 }), "0.6 · red + 0.4 · blue");
    }

    [Test]
    public void WithoutASlideSizeTheThumbnailAspectDecides()
    {
        // tiles reach x = 1024 + 256, y = 256 + 256: wider than the 2:1 thumbnail's aspect, so the width sets the scale
        var layout = TileLayout.ForThumbnail([1024, 256, 0, 0], 256, 200, 100, null);
        Assert.That(layout.Scale, Is.EqualTo(200.0 / 1280));
    }

    [Test]
    public void ScalarHeatmapUsesViridisAndAddsAColourBar()
    {
        var image = SlideMap.RenderScalar(Coords, [0f, 0.5f, 1f, 0.25f], new SlideMapOptions { TilePixels = 10 }, out _);
        var png = Save(image, "scalar.png");
        Assert.That(Size(png), Is.EqualTo((60 + SlideMap.ColorBarWidth, 160)));
        Assert.That(Pixel(png, 12, 12), Is.EqualTo(new SKColor(0x44, 0x01, 0x54)), "minimum: dark purple");
        Assert.That(Pixel(png, 12, 32), Is.EqualTo(new SKColor(0xFD, 0xE7, 0x25)), "maximum: yellow");
        Assert.That(Pixel(png, 22, 12), Is.EqualTo(new SKColor(0x21, 0x91, 0x8C)), "midpoint: teal");
        Assert.That(Pixel(png, 60 + 15, 12), Is.EqualTo(new SKColor(0xFD, 0xE7, 0x25)), "bar top = maximum");
        Assert.That(Pixel(png, 60 + 15, 160 - 13), Is.EqualTo(new SKColor(0x44, 0x01, 0x54)), "bar bottom = minimum");
        // a label is drawn in black to the right of the bar
        using var bitmap = SKBitmap.Decode(png);
        bool black = false;
        for (int x = 60 + 32; x < bitmap.Width && !black; x++)
            for (int y = 12; y < 19 && !black; y++)
                black = bitmap.GetPixel(x, y) == SKColors.Black;
        Assert.That(black, Is.True);
    }

    [Test]
    public void TileSizeIsInferredFromTheGridStep()
    {
        Assert.That(TileLayout.InferTileSize([0, 0, 512, 0, 1024, 512, 1536, 1024]), Is.EqualTo(512));
        Assert.That(TileLayout.InferTileSize([100, 100]), Is.EqualTo(256));
    }

    [Test]
    public void FileAttributesGiveTileAndSlideSize()
    {
        var attributes = new Dictionary<string, object> { ["patch_size_level0"] = 512L, ["level0_dim"] = new long[] { 40000, 30000 } };
        var options = FeatureMaps.WithFileAttributes(new SlideMapOptions(), attributes);
        Assert.That(options.TileSize, Is.EqualTo(512));
        Assert.That(options.SlideSize, Is.EqualTo((40000.0, 30000.0)));
        var explicitSize = FeatureMaps.WithFileAttributes(new SlideMapOptions { TileSize = 256 }, attributes);
        Assert.That(explicitSize.TileSize, Is.EqualTo(256), "an explicit --tile-size wins");
    }
}
