using GigaPath.Imaging;
using NUnit.Framework;

namespace GigaPath.Tests.Imaging;

public class PillowResampleTests
{
    /// <summary>A deterministic RGB test pattern; the Pillow expectations below were computed from the same formula.</summary>
    internal static RgbImage Pattern(int w, int h)
    {
        var px = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                    px[(y * w + x) * 3 + c] = (byte)(x * 29 + y * 71 + c * 101 + 7);
        return new RgbImage(w, h, px);
    }

    // Pillow 9.4: np.asarray(Image.fromarray(pattern).resize((ow, oh), Image.BICUBIC)).tobytes().hex()
    [TestCase(7, 5, 3, 9, "167ac358d5279aab632d9a8f72ab3cba867e5acf35a05e66ea47ad89af3eae4396945bb0b37174a249be259396ca57ac6071c442c958b95ac038a1a97dd2385f898164cb5cab786d2da45c7fe032c2448d", TestName = "Shrink width, stretch height")]
    [TestCase(50, 2, 4, 2, "738b7d8475878b7c83758d71897f6f7485787b837f847380", TestName = "Horizontal-only 12.5x downsample")]
    [TestCase(3, 40, 3, 5, "7c8d7e857f7b7a7e80827782787d8b7b8986788784848679877a7c84787a7a778575838877808380828685817b", TestName = "Vertical-only 8x downsample")]
    [TestCase(1, 1, 4, 4, "076cd1076cd1076cd1076cd1076cd1076cd1076cd1076cd1076cd1076cd1076cd1076cd1076cd1076cd1076cd1076cd1", TestName = "Single pixel upsample")]
    [TestCase(9, 9, 17, 4, "3da66545a17256938b679d7679b1488b8f48985c5e90606f847780909093a39a9db96e90b8518a8363a169789b83896590915194959aa0888eb467779a657d6778966d81ad8788b8709a9254a6665f937873858a819f6c8ca5589872699557787e6c7e7577817779857b867983a063928766a1537a8c52836e6a897a819b9291a4a98087ad6e717c74835c7f9a768dae819caa6aad765fb55baa6768936f725d808856919f6ea3ac68b78b5bc35966a160787a74878e68979c60af6a6db0477f82578f6d6c9f867db29385bb", TestName = "Stretch width, shrink height")]
    public void MatchesPillowBicubic(int w, int h, int outW, int outH, string expectedHex)
    {
        var result = PillowResample.ResizeBicubic(Pattern(w, h), outW, outH);
        Assert.That((result.Width, result.Height), Is.EqualTo((outW, outH)));
        Assert.That(Convert.ToHexStringLower(result.Pixels), Is.EqualTo(expectedHex));
    }

    [Test]
    public void SameSizeIsAnUnchangedCopy()
    {
        var src = Pattern(6, 4);
        var result = PillowResample.ResizeBicubic(src, 6, 4);
        Assert.That(result, Is.Not.SameAs(src));
        Assert.That(result.Pixels, Is.EqualTo(src.Pixels));
    }

    [Test]
    public void NonPositiveTargetIsRejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => PillowResample.ResizeBicubic(Pattern(4, 4), 0, 3));
}
