using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Models.Tile;
using GigaPath.Pipeline;
using GigaPath.Tests.Slides;
using GigaPath.Weights;
using NUnit.Framework;

namespace GigaPath.Tests.Pipeline;

/// <summary>
/// Crash safety: a cohort interrupted mid-slide (cancellation, or the debris a killed process leaves) and run again
/// ends with every output complete and byte-identical to an uninterrupted run.
/// </summary>
public class CohortResumeTests
{
    private string _dir = "";
    private string _csv = "";
    private TileEncoder _tile = null!;
    private SlideEncoder _slide = null!;
    private IReadOnlyList<SlideJob> _jobs = [];

    /// <summary>The outputs of an uninterrupted run of the same cohort.</summary>
    private string Reference { get; set; } = "";
    private static readonly string[] Ids = ["a-crop", "b-crop", "c-cmu"];

    [OneTimeSetUp]
    public void SetUp()
    {
        _dir = FixturePaths.TempDir("pipeline-resume");
        _tile = PipelineTestData.TileEncoder();
        _slide = PipelineTestData.SlideEncoder();
        var slides = Directory.CreateDirectory(Path.Combine(_dir, "slides")).FullName;
        PipelineTestData.WriteCrop(Path.Combine(slides, "crop1.png"), 700, 1100);
        PipelineTestData.WriteCrop(Path.Combine(slides, "crop2.png"), 900, 1700);
        _csv = Path.Combine(slides, "cohort.csv");
        File.WriteAllText(_csv, $"slide_id,path,mpp\nb-crop,crop2.png,0.5\na-crop,crop1.png,0.5\nc-cmu,{SlideFixtures.CmuSmallRegion},\n");
        _jobs = CohortInputs.Expand([_csv]);
        Reference = Path.Combine(_dir, "uninterrupted");
        var summary = Run(Reference);
        Assert.That(summary.Count(SlideStatus.Done), Is.EqualTo(3), string.Join("; ", summary.Outcomes.Select(o => o.Message)));
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        _tile.Dispose();
        _slide.Dispose();
        Directory.Delete(_dir, true);
    }

    private CohortSummary Run(string outDir, ICohortObserver? observer = null, CancellationToken cancel = default, bool retry = false,
        PipelineOptions? options = null, bool force = false) =>
        new CohortRunner(_tile, _slide, options ?? new PipelineOptions { BatchSize = 4 },
            new CohortOptions { OutputDirectory = outDir, RetryFailed = retry, Force = force }).Run(_jobs, observer, cancel);


    private void AssertSameAsReference(string dir)
    {
        foreach (var id in Ids)
        {
            var a = new SlideOutputs(Reference, id);
            var b = new SlideOutputs(dir, id);
            Assert.That(File.ReadAllBytes(b.H5), Is.EqualTo(File.ReadAllBytes(a.H5)), $"{id}.h5");
            Assert.That(File.ReadAllBytes(b.SlideEmbedding), Is.EqualTo(File.ReadAllBytes(a.SlideEmbedding)), $"{id}.slide.safetensors");
            Assert.That(File.ReadAllBytes(b.Thumbnail), Is.EqualTo(File.ReadAllBytes(a.Thumbnail)), $"{id}.thumbnail.png");
            var ma = SlideManifest.Read(a.Manifest);
            var mb = SlideManifest.Read(b.Manifest);
            Assert.That(mb.Outputs.Values.Select(o => o.Sha256), Is.EqualTo(ma.Outputs.Values.Select(o => o.Sha256)), id);
        }
        Assert.That(PipelineTestData.TempFiles(dir), Is.Empty, "no temporary files left");
        Assert.That(Directory.EnumerateFiles(Path.Combine(dir, SlideOutputs.LockFolder)), Is.Empty, "no lock files left");
    }

    [Test]
    public void CancelledMidSlideThenRerunMatchesAnUninterruptedRun()
    {
        var dir = Path.Combine(_dir, "cancelled");
        using var cancel = new CancellationTokenSource();
        // Cancel the second slide (b-crop, 9 candidate tiles in batches of 4) after its first batch.
        var recorder = new PipelineTestData.Recorder((job, p) => job.SlideId == "b-crop" && p.Done == 4, cancel);
        Assert.That(() => Run(dir, recorder, cancel.Token), Throws.InstanceOf<OperationCanceledException>(), "Ctrl-C ends the run");
        Assert.That(recorder.Events, Does.Contain("Done a-crop"));
        Assert.That(recorder.Events, Does.Contain("tiles b-crop 4/" + recorder.Events.First(e => e.StartsWith("tiles b-crop", StringComparison.Ordinal)).Split('/')[1]));
        Assert.That(File.Exists(new SlideOutputs(dir, "a-crop").Manifest), Is.True, "slide 1 finished before the interruption");
        Assert.That(PipelineTestData.FilesOf(dir, "b-crop"), Is.Empty, "nothing of the interrupted slide is left");
        Assert.That(PipelineTestData.FilesOf(dir, "c-cmu"), Is.Empty, "slide 3 was never started");
        Assert.That(PipelineTestData.TempFiles(dir), Is.Empty);
        Assert.That(Directory.EnumerateFiles(Path.Combine(dir, SlideOutputs.LockFolder)), Is.Empty, "the lock was released");

        var resumed = Run(dir);
        Assert.That(resumed.Outcomes.Select(o => (o.Job.SlideId, o.Status)),
            Is.EqualTo(new[] { ("a-crop", SlideStatus.Skipped), ("b-crop", SlideStatus.Done), ("c-cmu", SlideStatus.Done) }));
        Assert.That(resumed.HasFailures, Is.False);
        AssertSameAsReference(dir);
    }

    [Test]
    public void DebrisOfAKilledProcessIsCleanedAndTheSlideRedone()
    {
        var dir = Path.Combine(_dir, "killed");
        Assert.That(Run(dir).Count(SlideStatus.Done), Is.EqualTo(3));
        // What `kill -9` during b-crop's writing leaves: its manifest not yet written, an output half-way through
        // AtomicFile (a temp file), a lock file of a dead process; an old output that will be replaced.
        var b = new SlideOutputs(dir, "b-crop");
        File.Delete(b.Manifest);
        File.WriteAllText(b.SlideEmbedding, "stale bytes from an earlier run");
        var tmp = Path.Combine(dir, $".{Path.GetFileName(b.H5)}.999999.{Guid.NewGuid():N}.tmp");
        File.WriteAllBytes(tmp, new byte[100]);
        File.WriteAllText(b.Lock, "pid 999999\nhost elsewhere\n");
        // And a slide whose outputs a user damaged after it completed: detected by the manifest's sizes.
        File.AppendAllText(new SlideOutputs(dir, "c-cmu").H5, "x");

        var resumed = Run(dir);
        Assert.That(resumed.Outcomes.Select(o => (o.Job.SlideId, o.Status)),
            Is.EqualTo(new[] { ("a-crop", SlideStatus.Skipped), ("b-crop", SlideStatus.Done), ("c-cmu", SlideStatus.Done) }));
        Assert.That(File.Exists(tmp), Is.False, "stale temporary removed");
        AssertSameAsReference(dir);
    }

    [Test]
    public void ASlideLockedByAnotherProcessIsLeftToIt()
    {
        var dir = Path.Combine(_dir, "locked");
        var b = new SlideOutputs(dir, "b-crop");
        using (var held = SlideLock.TryAcquire(b.Lock, out _))
        {
            Assert.That(held, Is.Not.Null);
            Assert.That(SlideLock.TryAcquire(b.Lock, out var holder), Is.Null, "a second taker is refused");
            Assert.That(holder, Does.Contain(b.Lock));
            var summary = Run(dir);
            Assert.That(summary.Outcomes.Single(o => o.Job.SlideId == "b-crop").Status, Is.EqualTo(SlideStatus.Busy));
            Assert.That(summary.Count(SlideStatus.Done), Is.EqualTo(2));
            Assert.That(File.Exists(b.Manifest), Is.False);
        }
        var after = Run(dir);
        Assert.That(after.Outcomes.Single(o => o.Job.SlideId == "b-crop").Status, Is.EqualTo(SlideStatus.Done));
        AssertSameAsReference(dir);
    }

    [Test]
    public void CompleteSlidesAreSkippedUntilTheSettingsChange()
    {
        var dir = Path.Combine(_dir, "settings");
        Assert.That(Run(dir).Count(SlideStatus.Done), Is.EqualTo(3));
        var again = Run(dir, options: new PipelineOptions { BatchSize = 7, Readers = 1 });
        Assert.That(again.Count(SlideStatus.Skipped), Is.EqualTo(3), "batch size and readers do not change results");
        var before = File.ReadAllBytes(new SlideOutputs(dir, "a-crop").SlideEmbedding);
        var kept = Run(dir, options: new PipelineOptions { BatchSize = 4, Pooling = SlidePooling.Cls });
        Assert.That(kept.Count(SlideStatus.SettingsChanged), Is.EqualTo(3), "complete outputs of other settings are left alone unless forced");
        Assert.That(kept.HasFailures, Is.True, "nothing was produced for the settings asked for: the run does not succeed");
        Assert.That(kept.Outcomes[0].Message, Does.Contain("pool").And.Contain("CohortOptions.Force"));
        Assert.That(File.ReadAllBytes(new SlideOutputs(dir, "a-crop").SlideEmbedding), Is.EqualTo(before));
        var cls = Run(dir, options: new PipelineOptions { BatchSize = 4, Pooling = SlidePooling.Cls }, force: true);
        Assert.That(cls.Count(SlideStatus.Done), Is.EqualTo(3), "another pooling is another result");
        Assert.That(Directory.Exists(Path.Combine(dir, SlideStaging.Folder)) && Directory.EnumerateFileSystemEntries(Path.Combine(dir, SlideStaging.Folder)).Any(),
            Is.False, "no staging folders left");
        using var file = SafeTensorsFile.Open(new SlideOutputs(dir, "a-crop").SlideEmbedding);
        Assert.That(file.Metadata["pool"], Is.EqualTo("cls"));
        Assert.That(new SlideOutputs(dir, "a-crop").Incomplete(new SlidePipeline(_tile, _slide, new PipelineOptions()).SettingsFor(_jobs[0])),
            Does.StartWith("settings changed: pool"));
    }

    [Test]
    public void ShardsPartitionTheCohortBySortedSlideId()
    {
        var dir = Path.Combine(_dir, "shards");
        var pipeline = new SlidePipeline(_tile, _slide, new PipelineOptions { BatchSize = 4 });
        var parts = Enumerable.Range(0, 2)
            .Select(k => new CohortRunner(pipeline, new CohortOptions { OutputDirectory = dir, Shard = new ShardSpec(k, 2) }).Run(_jobs))
            .Select(s => s.Outcomes.Select(o => o.Job.SlideId).ToList())
            .ToList();
        Assert.That(parts[0], Is.EqualTo(new[] { "a-crop", "c-cmu" }));
        Assert.That(parts[1], Is.EqualTo(new[] { "b-crop" }));
        AssertSameAsReference(dir);
        Assert.That(CohortInputs.Shard(_jobs, new ShardSpec(2, 3)).Select(j => j.SlideId), Is.EqualTo(new[] { "c-cmu" }));
    }

    [Test]
    public void FeaturesOfTheCropsAreThoseOfTheSlideRegions()
    {
        // The plain-image slides are read as one-level slides at the given 0.5 µm/px: 3 x 3 tiles of 256 px.
        var h5 = TileFeatureFile.Read(new SlideOutputs(Reference, "a-crop").H5);
        Assert.That(h5.Coords!.Chunk(2).All(c => c[0] % 256 == 0 && c[1] % 256 == 0 && c[0] < 768 && c[1] < 768), Is.True);
        Assert.That(h5.Attributes["mpp_source"], Is.EqualTo("override"));
        Assert.That(h5.Attributes["slide_mpp"], Is.EqualTo(0.5));
    }
}
