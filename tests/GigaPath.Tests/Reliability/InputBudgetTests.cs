using GigaPath.Imaging;
using GigaPath.IO;
using GigaPath.Tests.Cli;
using NUnit.Framework;

namespace GigaPath.Tests.Reliability;

/// <summary>
/// Issue 14, cases 1 and 2 in the library and the CLI: inputs whose cost is far above their size are refused from
/// their header, before the allocation, with a message naming the limit and the option that raises it.
/// </summary>
public class InputBudgetTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("budget");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    [Test]
    public void AnH5DeclaringThreeMillionUnwrittenTilesIsRefusedUnread()
    {
        var path = Path.Combine(_dir, "bomb.h5");
        HostileInputs.WriteUnwrittenH5(path, 3_000_000, 192);
        long size = new FileInfo(path).Length;
        TestContext.Out.WriteLine($"{path}: {size} bytes");
        Assert.That(size, Is.LessThan(8 * 1024), "the attack file is tiny");

        BudgetExceededException? e = null;
        long allocated = HostileInputs.AllocatedBy(() => e = Assert.Throws<BudgetExceededException>(() => TileFeatureFile.Read(path)));
        Assert.That(e!.Message, Does.Contain("3,000,000 tiles").And.Contain("1,000,000").And.Contain("TileFeatureBudget.MaxTiles"));
        Assert.That(e.Option, Is.EqualTo("TileFeatureBudget.MaxTiles"), "the library names its own option, not a CLI flag");
        // Reading it used to allocate 3 M × 194 values (2.3 GB) before anything looked at the count.
        Assert.That(allocated, Is.LessThan(16L << 20), "refused from the header, nothing materialised");
    }

    [Test]
    public void AnH5DeclaringMoreDataThanItCanHoldIsRefusedUnderTheTileLimit()
    {
        var path = Path.Combine(_dir, "under-limit.h5");
        HostileInputs.WriteUnwrittenH5(path, 50_000, 1536);
        BudgetExceededException? e = null;
        long allocated = HostileInputs.AllocatedBy(() => e = Assert.Throws<BudgetExceededException>(() => TileFeatureFile.Read(path)));
        Assert.That(e!.Message, Does.Contain("308,000,000 bytes").And.Contain("not in the file"));
        Assert.That(allocated, Is.LessThan(16L << 20));
    }

    [Test]
    public void FilesWithinTheBudgetStillReadAndTheLimitIsTheCallers()
    {
        var h5 = FixturePaths.Get("tile_features_h5py", "clam_layout.h5"); // 7 tiles × 5, gzip-free h5py file
        Assert.That(TileFeatureFile.Read(h5).Count, Is.EqualTo(7));
        Assert.That(TileFeatureFile.Read(h5, new TileFeatureBudget(7, ExpectedDim: 5)).Count, Is.EqualTo(7));
        var over = Assert.Throws<BudgetExceededException>(() => TileFeatureFile.Read(h5, new TileFeatureBudget(6)));
        Assert.That(over!.Message, Does.Contain("7 tiles, above the limit of 6; raise it with TileFeatureBudget.MaxTiles"));
        var dim = Assert.Throws<GigaPathException>(() => TileFeatureFile.Read(h5, new TileFeatureBudget(10, ExpectedDim: 1536)));
        Assert.That(dim!.Message, Does.Contain("embeddings of 5 values; this model takes 1536"));

        var st = FixturePaths.Get("slide_encoder_tiny", "input.safetensors"); // 150 tiles
        Assert.That(TileFeatureFile.Read(st).Count, Is.EqualTo(150));
        var stOver = Assert.Throws<BudgetExceededException>(() => TileFeatureFile.Read(st, new TileFeatureBudget(149)));
        Assert.That(stOver!.Message, Does.Contain("150 tiles, above the limit of 149"));
    }

    [Test]
    public void EmbedSlideRefusesTheH5BombWithExitCode2()
    {
        var path = Path.Combine(_dir, "bomb.h5");
        HostileInputs.WriteUnwrittenH5(path, 3_000_000, 192);
        var run = CliInvocation.Run("embed-slide", "--model", FixturePaths.Get("slide_encoder_tiny"), "--tiles", path,
            "--out", Path.Combine(_dir, "out.safetensors"));
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.StartWith("error: ").And.Contain("3,000,000 tiles").And.Contain("--max-tiles"));
        Assert.That(File.Exists(Path.Combine(_dir, "out.safetensors")), Is.False);

        // Raising the limit gets past the count; the model's width (32) is checked from the shape next (issue 25)...
        run = CliInvocation.Run("embed-slide", "--model", FixturePaths.Get("slide_encoder_tiny"), "--tiles", path,
            "--out", Path.Combine(_dir, "out.safetensors"), "--max-tiles", "5000000");
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Contain("embeddings of 192 values; this model takes 32"));

        // ...and a bomb of the model's width is still refused by the declared-size check.
        var narrow = Path.Combine(_dir, "bomb-32.h5");
        HostileInputs.WriteUnwrittenH5(narrow, 3_000_000, 32);
        run = CliInvocation.Run("embed-slide", "--model", FixturePaths.Get("slide_encoder_tiny"), "--tiles", narrow,
            "--out", Path.Combine(_dir, "out.safetensors"), "--max-tiles", "5000000");
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Contain("not in the file"));
        Assert.That(File.Exists(Path.Combine(_dir, "out.safetensors")), Is.False);
    }

    [TestCase(10000, 1)]
    [TestCase(10500, 1)]
    [TestCase(12000, 1)]
    [TestCase(30000, 1)]
    [TestCase(1, 30000)]
    [TestCase(17, 1)]
    public void ThinImagesAreRefusedBeforeTheResize(int width, int height)
    {
        var image = new RgbImage(width, height);
        ImageTooLargeException? e = null;
        long allocated = HostileInputs.AllocatedBy(() => e = Assert.Throws<ImageTooLargeException>(() => TilePreprocessor.Default.Preprocess(image, "thin.png")));
        Assert.That(e!.Message, Does.StartWith("thin.png: ").And.Contain($"{width}x{height}").And.Contain("16:1")
            .And.Contain("TileEmbeddingOptions.MaxAspectRatio").And.Not.Contain("--"));
        Assert.That(e.Option, Is.EqualTo("TileEmbeddingOptions.MaxAspectRatio"));
        Assert.That(allocated, Is.LessThan(1L << 20), "refused before any resize buffer");
    }

    [Test]
    public void ImagesAtTheAspectLimitAreResizedAndTheLimitCanBeRaised()
    {
        Assert.That(TilePreprocessor.Default.GetResizedSize(16, 1), Is.EqualTo((4096, 256)));
        Assert.That(TilePreprocessor.Default.GetResizedSize(1, 16), Is.EqualTo((256, 4096)));
        Assert.That(TilePreprocessor.Default.Preprocess(new RgbImage(4096, 256)), Has.Length.EqualTo(3 * 224 * 224));
        var wide = TilePreprocessor.Default.WithMaxAspectRatio(100);
        Assert.That(wide.GetResizedSize(100, 1), Is.EqualTo((25600, 256)));
        Assert.Throws<ImageTooLargeException>(() => wide.GetResizedSize(101, 1));
        Assert.Throws<GigaPathException>(() => TilePreprocessor.Default.WithMaxAspectRatio(0.5));
        Assert.Throws<GigaPathException>(() => TilePreprocessor.Default.WithMaxAspectRatio(double.NaN));
        // The resampler itself refuses buffers it could not index, whoever calls it.
        Assert.Throws<ImageTooLargeException>(() => PillowResample.ResizeBicubic(new RgbImage(1, 1), 3_000_000, 256));
    }

    [TestCase(30000, 1)]
    [TestCase(1, 30000)]
    public void EmbedTilesRefusesAThinImageWithExitCode2(int width, int height)
    {
        var png = Path.Combine(_dir, "thin.png");
        File.WriteAllBytes(png, HostileInputs.Png(width, height));
        var output = Path.Combine(_dir, "out.safetensors");
        var run = CliInvocation.Run("embed-tiles", "--model", FixturePaths.Get("tile_encoder_tiny"), "--out", output, png);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.StartWith("error: ").And.Contain(png).And.Contain("--max-aspect-ratio"));
        Assert.That(File.Exists(output), Is.False);

        run = CliInvocation.Run("embed-tiles", "--model", FixturePaths.Get("tile_encoder_tiny"), "--out", output, "--max-aspect-ratio", "0", png);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Contain("--max-aspect-ratio: must be a finite number >= 1"));
    }
}
