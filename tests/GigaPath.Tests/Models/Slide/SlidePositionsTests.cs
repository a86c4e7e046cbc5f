using GigaPath.Models.Slide;
using GigaPath.Weights;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Slide;

public class SlidePositionsTests
{
    [TestCase("slide_encoder_tiny")]
    [TestCase("slide_encoder_tiny_short")]
    [TestCase("slide_encoder_tiny_misaligned")]
    public void GridCellsGiveTheFixturePosIndex(string fixture)
    {
        using var input = SafeTensorsFile.Open(FixturePaths.Get(fixture, "input.safetensors"));
        using var scope = NewDisposeScope();
        var cells = SlidePositions.ToGridCells(input.Load("coords")[0], 256, 1000);
        var (expected, _) = input.ReadLongs("pos_index");
        Assert.That(cells.PositionIndices(1000), Is.EqualTo(expected));
        Assert.That(cells.Warnings, Is.Empty);
    }

    [Test]
    public void RowsPutTheYCodeFirst()
    {
        using var scope = NewDisposeScope();
        const int d = 16, q = d / 4;
        long[] gx = [3, 0, 999];
        long[] gy = [7, 0, 998];
        var rows = SlidePositions.SinCosRows(gx, gy, d);
        Assert.That(rows.shape, Is.EqualTo(new long[] { 3, d }));
        Assert.That(rows.dtype, Is.EqualTo(ScalarType.Float32));
        var values = rows.data<float>().ToArray();
        for (int t = 0; t < gx.Length; t++)
        {
            for (int i = 0; i < q; i++)
            {
                double w = 1.0 / Math.Pow(10000, (double)i / q);
                Assert.That(values[t * d + i], Is.EqualTo((float)Math.Sin(gy[t] * w)));
                Assert.That(values[t * d + q + i], Is.EqualTo((float)Math.Cos(gy[t] * w)));
                Assert.That(values[t * d + 2 * q + i], Is.EqualTo((float)Math.Sin(gx[t] * w)));
                Assert.That(values[t * d + 3 * q + i], Is.EqualTo((float)Math.Cos(gx[t] * w)));
            }
        }
    }

    [Test]
    public void FloorsNonAlignedCoordinatesAndWarnsOnSharedCells()
    {
        using var scope = NewDisposeScope();
        var coords = tensor(new float[] { 255.9f, 0, 256, 511.5f, 300, 600, 0, 0 }, [4, 2]);
        var cells = SlidePositions.ToGridCells(coords, 256, 1000);
        Assert.That(cells.Gx, Is.EqualTo(new long[] { 0, 1, 1, 0 }));
        Assert.That(cells.Gy, Is.EqualTo(new long[] { 0, 1, 2, 0 }));
        Assert.That(cells.Warnings, Has.Count.EqualTo(1));
        Assert.That(cells.Warnings[0], Does.Contain("tile 3 and tile 0"));
    }

    [TestCase(-1f, 0f, "tile 1 has x = -1")]
    [TestCase(0f, float.NaN, "tile 1 has y = NaN")]
    [TestCase(float.PositiveInfinity, 0f, "tile 1 has x = ∞")]
    [TestCase(256000f, 0f, "tile 1 has x = 256000")]
    [TestCase(0f, 300000f, "tile 1 has y = 300000")]
    public void RejectsBadCoordinatesByTileIndex(float x, float y, string message)
    {
        using var scope = NewDisposeScope();
        var coords = tensor(new[] { 0f, 0f, x, y }, [2, 2]);
        var e = Assert.Throws<GigaPathException>(() => SlidePositions.ToGridCells(coords, 256, 1000));
        Assert.That(e!.Message.Replace("Infinity", "∞"), Does.Contain(message));
    }
}
