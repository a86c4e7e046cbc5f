using System.Text.Json;
using GigaPath.Cli.Commands;
using GigaPath.Pipeline;
using GigaPath.Tests.Cli;
using GigaPath.Tests.Slides;
using NUnit.Framework;

namespace GigaPath.Tests.Pipeline;

/// <summary>
/// `gigapath run` on a cohort with every kind of bad slide: each is recorded in failed/&lt;id&gt;.json with a message
/// naming the problem, nothing of it is left half-written, the good slides complete, and the exit code says so.
/// </summary>
public class CohortBadInputTests
{
    private string _dir = "";
    private string _slides = "";

    [SetUp]
    public void SetUp()
    {
        _dir = FixturePaths.TempDir("pipeline-bad");
        _slides = Directory.CreateDirectory(Path.Combine(_dir, "slides")).FullName;
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private string Out => Path.Combine(_dir, "out");

    private CliInvocation Run(params string[] args) =>
        CliInvocation.Run(["run", .. args, "--tile-model", PipelineTestData.TileModelDir, "--slide-model", PipelineTestData.SlideModelDir,
            "--out", Out, "--progress", "lines", "--batch-size", "8"]);

    private FailureRecord Failure(string id) =>
        JsonSerializer.Deserialize<FailureRecord>(File.ReadAllText(new SlideOutputs(Out, id).FailedRecord), SlideManifest.Json)!;

    private void AssertNothingWritten(string id)
    {
        var leftovers = PipelineTestData.FilesOf(Out, id).Where(f => !f.Contains($"{Path.DirectorySeparatorChar}failed{Path.DirectorySeparatorChar}"));
        Assert.That(leftovers, Is.Empty, $"{id}: no outputs, temporaries or locks");
    }

    [Test]
    public void EveryBadSlideIsRecordedAndTheOthersComplete()
    {
        var blank = PipelineTestData.WriteBlank(Path.Combine(_slides, "blank.png"));
        var csv = Path.Combine(_slides, "cohort.csv");
        File.WriteAllText(csv, string.Join("\n",
            "slide_path,slide_id,mpp",
            $"{SlideFixtures.CmuSmallRegion},good,",
            "does-not-exist.svs,missing,",
            $"{SlideFixtures.BoxesPng},not-a-slide,",
            $"{SlideFixtures.BoxesTiff},no-mpp,",
            $"{blank},no-tissue,0.5",
            $"{SlideFixtures.Unopenable},unopenable,") + "\n");

        var run = Run(csv);
        TestContext.Out.WriteLine(run.Out + run.Error);
        Assert.That(run.ExitCode, Is.EqualTo(RunCommand.SlidesFailedExitCode), run.ToString());
        Assert.That(run.Out, Does.Contain("1 done").And.Contain("5 failed"));
        Assert.That(File.Exists(new SlideOutputs(Out, "good").Manifest), Is.True);

        var expected = new Dictionary<string, string[]>
        {
            ["missing"] = ["slide file not found", "does-not-exist.svs"],
            ["not-a-slide"] = ["boxes.png", "not a whole-slide image", "TilingOptions.SlideMpp"],
            ["no-mpp"] = ["boxes.tiff", "no MPP metadata", "TilingOptions.SlideMpp"],
            ["no-tissue"] = ["blank.png", "no tissue found"],
            ["unopenable"] = ["unopenable.tiff", "Unsupported TIFF compression"],
        };
        // The record holds the library's message; the command line names its own flag.
        Assert.That(run.Out, Does.Contain("pass --slide-mpp (micrometres per pixel)"));
        foreach (var (id, fragments) in expected)
        {
            var record = Failure(id);
            TestContext.Out.WriteLine($"{id}: {record.Error}");
            foreach (var f in fragments) Assert.That(record.Error, Does.Contain(f), id);
            Assert.That(record.ExceptionType, Is.EqualTo(typeof(GigaPathException).FullName), id);
            Assert.That(run.Out, Does.Contain($"FAILED {id}: "), id);
            AssertNothingWritten(id);
        }
        Assert.That(PipelineTestData.TempFiles(Out), Is.Empty);

        // Without --retry-failed the failures stand (and still fail the run); the good slide is not redone.
        var again = Run(csv);
        Assert.That(again.ExitCode, Is.EqualTo(RunCommand.SlidesFailedExitCode));
        Assert.That(again.Out, Does.Contain("0 done, 1 skipped").And.Contain("5 failed earlier"));
        Assert.That(again.Out, Does.Contain("--retry-failed"));

        // Fix one slide; --retry-failed redoes the failed ones: the fixed one completes and loses its record.
        PipelineTestData.WriteCrop(blank, 700, 1100);
        var retried = Run(csv, "--retry-failed");
        Assert.That(retried.Out, Does.Contain("1 done, 1 skipped").And.Contain("4 failed"), retried.ToString());
        Assert.That(File.Exists(new SlideOutputs(Out, "no-tissue").FailedRecord), Is.False);
        Assert.That(File.Exists(new SlideOutputs(Out, "no-tissue").Manifest), Is.True);
        Assert.That(Failure("no-mpp").FailedUtc, Is.GreaterThan(DateTimeOffset.UtcNow.AddMinutes(-1)));
    }

    [Test]
    public void AnUnreadableRegionIsRecorded()
    {
        // unreadable.svs opens (16 x 16) but OpenSlide fails to decode it; small.svs is the same size and reads.
        var run = CliInvocation.Run("run", SlideFixtures.Unreadable, SlideFixtures.SmallSvs, "--tile-size", "8", "--tissue", "none",
            "--tile-model", PipelineTestData.TileModelDir, "--slide-model", PipelineTestData.SlideModelDir, "--out", Out, "--progress", "lines");
        TestContext.Out.WriteLine(run.Out + run.Error);
        Assert.That(run.ExitCode, Is.EqualTo(RunCommand.SlidesFailedExitCode), run.ToString());
        Assert.That(Failure("unreadable").Error, Does.Contain("unreadable.svs").And.Contain("Bogus marker length"));
        AssertNothingWritten("unreadable");
        var manifest = SlideManifest.Read(new SlideOutputs(Out, "small").Manifest);
        Assert.That(manifest.Tiling.TileCount, Is.EqualTo(4), "2 x 2 tiles of 8 px at 0.5 µm/px");
    }

    [Test]
    public void ProblemsWithTheWholeRunAreUserErrors()
    {
        var csv = Path.Combine(_slides, "bad.csv");
        File.WriteAllText(csv, "file,mpp\nx.svs,0.5\n");
        var run = Run(csv);
        Assert.That(run.ExitCode, Is.EqualTo(2));
        Assert.That(run.Error, Does.Contain("bad.csv").And.Contain("no 'path' or 'slide_path' column"));

        Assert.That(Run(SlideFixtures.CmuSmallRegion, "--shard", "2/2").Error, Does.Contain("--shard '2/2'"));
        Assert.That(Run(SlideFixtures.CmuSmallRegion, "--pool", "max").Error, Does.Contain("--pool 'max'"));
        Assert.That(Run(SlideFixtures.CmuSmallRegion, "--tissue", "otsu").Error, Does.Contain("--tissue 'otsu'"));
        Assert.That(Run(SlideFixtures.CmuSmallRegion, SlideFixtures.CmuSmallRegion).Error, Does.Contain("slide ids must be unique"));
        Assert.That(Directory.Exists(Out) ? Directory.EnumerateFiles(Out, "*", SearchOption.AllDirectories) : [], Is.Empty);
    }

    [Test]
    public async Task AFifoAndALinkLoopInTheFolderFailAloneWithoutBlocking()
    {
        File.Copy(SlideFixtures.CmuSmallRegion, Path.Combine(_slides, "good.svs"));
        CohortInputsTests.MakeFifo(Path.Combine(_slides, "fifo.svs"));
        File.CreateSymbolicLink(Path.Combine(_slides, "loop.svs"), Path.Combine(_slides, "loop.svs"));

        // Opening the FIFO would block forever: the run must finish on its own.
        var run = await Task.Run(() => Run(_slides)).WaitAsync(TimeSpan.FromMinutes(5));
        Assert.That(run.ExitCode, Is.EqualTo(RunCommand.SlidesFailedExitCode), run.ToString());
        Assert.That(run.Out, Does.Contain("1 done").And.Contain("2 failed"));
        Assert.That(run.Error, Does.Not.Contain("   at "), "no stack trace");
        Assert.That(Failure("fifo").Error, Does.Contain("fifo.svs").And.Contain("FIFO (named pipe), not a regular file"));
        Assert.That(Failure("loop").Error, Does.Contain("loop.svs").And.Contain("a loop of symbolic links"));
        AssertNothingWritten("fifo");
        AssertNothingWritten("loop");
    }
}
