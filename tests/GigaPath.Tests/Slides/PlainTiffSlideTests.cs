using GigaPath.Slides;
using NUnit.Framework;

namespace GigaPath.Tests.Slides;

public class PlainTiffSlideTests
{
    [Test]
    public void StrippedTiffOpensAsImageWithMpp()
    {
        var dir = FixturePaths.TempDir();
        try
        {
            var path = System.IO.Path.Combine(dir, "core.tif");
            var image = SyntheticSlides.Image(300, 200, (10, 20, 100, 50, (120, 60, 140)));
            StrippedTiff.Write(path, image);
            Assert.That(OpenSlideSlide.DetectVendor(path), Is.Null, "OpenSlide reads only tiled TIFFs");
            var ex = Assert.Throws<GigaPathException>(() => SlideOpener.Open(path));
            Assert.That(ex!.Message, Does.Contain("core.tif").And.Contain("TilingOptions.SlideMpp"));
            using var slide = SlideOpener.Open(path, 0.25);
            Assert.That(slide, Is.InstanceOf<ImageFileSlide>());
            Assert.That(slide.ReadRegion(0, 0, 0, 300, 200).Pixels, Is.EqualTo(image.Pixels));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
