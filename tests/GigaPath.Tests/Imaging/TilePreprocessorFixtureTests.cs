using GigaPath.Imaging;
using GigaPath.Weights;
using NUnit.Framework;

namespace GigaPath.Tests.Imaging;

/// <summary>Parity with torchvision + Pillow 9.4 on the reference fixtures (fixtures/preprocess).</summary>
public class TilePreprocessorFixtureTests
{
    private static readonly string[] FixtureImages = ["prov_normal_000_1.png", "01581x_25327y.png"];
    private const int Plane = 224 * 224 * 3;

    [TestCase(0)]
    [TestCase(1)]
    public void RealTilesMatchReferenceBitExactly(int index)
    {
        using var expected = SafeTensorsFile.Open(FixturePaths.Get("preprocess", "expected.safetensors"));
        var (resized, resizedShape) = expected.ReadBytes("resized_u8");
        var (cropped, croppedShape) = expected.ReadBytes("cropped_u8");
        var (pixels, pixelShape) = expected.ReadFloats("pixel_values");
        Assert.That(resizedShape, Is.EqualTo(new long[] { 2, 256, 256, 3 }));
        Assert.That(croppedShape, Is.EqualTo(new long[] { 2, 224, 224, 3 }));
        Assert.That(pixelShape, Is.EqualTo(new long[] { 2, 3, 224, 224 }));

        var p = TilePreprocessor.Default;
        var image = ImageDecoder.DecodeFile(FixturePaths.Get("preprocess", FixtureImages[index]));
        var ourResized = p.Resize(image);
        Assert.That((ourResized.Width, ourResized.Height), Is.EqualTo((256, 256)));
        AssertBytesEqual(ourResized.Pixels, resized.AsSpan(index * 256 * 256 * 3, 256 * 256 * 3), "resized_u8");

        var ourCropped = p.CenterCrop(ourResized);
        AssertBytesEqual(ourCropped.Pixels, cropped.AsSpan(index * Plane, Plane), "cropped_u8");

        var ours = p.Preprocess(image);
        var diff = MaxAbsDiff(ours, pixels.AsSpan(index * Plane, Plane));
        TestContext.Out.WriteLine($"{FixtureImages[index]}: pixel_values max |diff| = {diff}");
        Assert.That(diff, Is.EqualTo(0f), "pixel_values should be bit-exact");
    }

    [TestCase(0, 256, 365, 70)]
    [TestCase(1, 256, 315, 46)]
    public void SyntheticResizeCasesMatchReferenceBitExactly(int index, int width, int height, int cropTop)
    {
        using var cases = SafeTensorsFile.Open(FixturePaths.Get("preprocess", "resize_cases.safetensors"));
        var (src, srcShape) = cases.ReadBytes($"case{index}.src_u8");
        var (resized, resizedShape) = cases.ReadBytes($"case{index}.resized_u8");
        var (cropped, _) = cases.ReadBytes($"case{index}.cropped_u8");
        var (pixels, _) = cases.ReadFloats($"case{index}.pixel_values");
        var image = new RgbImage((int)srcShape[1], (int)srcShape[0], src);

        var p = TilePreprocessor.Default;
        Assert.That(p.GetResizedSize(image.Width, image.Height), Is.EqualTo((width, height)));
        Assert.That(resizedShape, Is.EqualTo(new long[] { height, width, 3 }));
        var ourResized = p.Resize(image);
        AssertBytesEqual(ourResized.Pixels, resized, "resized_u8");

        var ourCropped = p.CenterCrop(ourResized);
        AssertBytesEqual(ourCropped.Pixels, cropped, "cropped_u8");
        // The reference crop sits at the half-to-even rounded offset.
        AssertBytesEqual(ourResized.Crop(16, cropTop, 224, 224).Pixels, cropped, "crop offset");

        var diff = MaxAbsDiff(p.Preprocess(image), pixels);
        TestContext.Out.WriteLine($"case{index}: pixel_values max |diff| = {diff}");
        Assert.That(diff, Is.EqualTo(0f), "pixel_values should be bit-exact");
    }

    [Test]
    public void BatchStacksTilesInOrder()
    {
        using var expected = SafeTensorsFile.Open(FixturePaths.Get("preprocess", "expected.safetensors"));
        var (pixels, _) = expected.ReadFloats("pixel_values");
        var p = TilePreprocessor.Default;
        var tiles = FixtureImages.Select(f => p.PreprocessFile(FixturePaths.Get("preprocess", f))).ToList();
        using var batch = p.ToBatch(tiles);
        Assert.That(batch.shape, Is.EqualTo(new long[] { 2, 3, 224, 224 }));
        Assert.That(batch.dtype, Is.EqualTo(TorchSharp.torch.ScalarType.Float32));
        Assert.That(MaxAbsDiff(batch.data<float>().ToArray(), pixels), Is.EqualTo(0f));
    }

    internal static void AssertBytesEqual(ReadOnlySpan<byte> actual, ReadOnlySpan<byte> expected, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        int mismatches = 0, first = -1;
        for (int i = 0; i < actual.Length; i++)
            if (actual[i] != expected[i])
            {
                if (first < 0) first = i;
                mismatches++;
            }
        Assert.That(mismatches, Is.Zero,
            first < 0 ? what : $"{what}: {mismatches} bytes differ, first at {first} ({actual[first]} vs {expected[first]})");
    }

    private static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.That(a.Length, Is.EqualTo(b.Length));
        float max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }
}
