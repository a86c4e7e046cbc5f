using NUnit.Framework;

namespace GigaPath.Tests.Slides;

public class SlideInfoCommandTests
{
    [Test]
    public void PlansAndWritesTheThumbnail()
    {
        var dir = FixturePaths.TempDir();
        try
        {
            var png = Path.Combine(dir, "boxes.png");
            int rc = GigaPath.Cli.Program.Main(["slide-info", SlideFixtures.BoxesTiff, "--slide-mpp", "0.5", "--tile-size", "32",
                "--tissue", "saturation", "--thumbnail", png, "--properties"]);
            Assert.That(rc, Is.EqualTo(0));
            Assert.That(new FileInfo(png).Length, Is.GreaterThan(100));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void MissingMppIsAUserError()
    {
        Assert.That(GigaPath.Cli.Program.Main(["slide-info", SlideFixtures.BoxesTiff]), Is.EqualTo(2));
        Assert.That(GigaPath.Cli.Program.Main(["slide-info", SlideFixtures.BoxesPng]), Is.EqualTo(2));
    }
}
