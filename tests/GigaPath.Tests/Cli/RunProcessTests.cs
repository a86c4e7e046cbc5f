using System.Diagnostics;
using System.Text.Json.Nodes;
using GigaPath.Pipeline;
using GigaPath.Tests.Pipeline;
using GigaPath.Tests.Slides;
using NUnit.Framework;

namespace GigaPath.Tests.Cli;

/// <summary>
/// <c>gigapath run</c> as a real process, killed mid-slide (SIGKILL: nothing runs after it; SIGINT: Ctrl-C, which
/// cleans up), then run again: the outputs must equal an uninterrupted run's byte for byte. The only fields allowed to
/// differ are the manifests' <c>completed_utc</c> and <c>timings</c> (when and how fast, not what).
/// </summary>
public class RunProcessTests
{
    private static readonly TimeSpan Hang = TimeSpan.FromMinutes(5);
    private static readonly string[] VolatileManifestFields = ["completed_utc", "timings"];

    /// <summary>In slide-id order: a crop (9 tiles), the real slide twice under two ids (48 tiles each), a crop.</summary>
    private static readonly string[] Ids = ["a-crop", "b-cmu", "c-cmu", "d-crop"];

    private string _dir = "";
    private string _csv = "";
    private string _reference = "";

    [OneTimeSetUp]
    public async Task RunUninterrupted()
    {
        _dir = FixturePaths.TempDir("run-process");
        var slides = Directory.CreateDirectory(Path.Combine(_dir, "slides")).FullName;
        PipelineTestData.WriteCrop(Path.Combine(slides, "crop1.png"), 700, 1100);
        PipelineTestData.WriteCrop(Path.Combine(slides, "crop2.png"), 900, 1700);
        // A second real slide: a copy, since one file listed under two ids is refused (it would count twice downstream).
        File.Copy(SlideFixtures.CmuSmallRegion, Path.Combine(slides, "cmu-copy.svs"));
        _csv = Path.Combine(slides, "cohort.csv");
        File.WriteAllText(_csv, $"slide_id,path,mpp\nd-crop,crop2.png,0.5\na-crop,crop1.png,0.5\nb-cmu,{SlideFixtures.CmuSmallRegion},\nc-cmu,cmu-copy.svs,\n");
        _reference = Path.Combine(_dir, "uninterrupted");
        using var run = Start(_reference);
        Assert.That(await run.ExitCodeAsync(Hang), Is.Zero, run.Output);
        Assert.That(run.Output, Does.Contain("slides: 4 done"));
    }

    [OneTimeTearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    /// <summary>One tile per forward pass, so that each slide spends longest embedding its tiles.</summary>
    private CliProcess Start(string outDir) => CliProcess.Start("run", _csv, "--tile-model", PipelineTestData.TileModelDir,
        "--slide-model", PipelineTestData.SlideModelDir, "--out", outDir, "--batch-size", "1", "--progress", "lines");

    /// <summary>
    /// Waits for a slide after the first to take its lock, freezes the process (SIGSTOP) and checks that it is mid-slide:
    /// lock file present, manifest absent. A slide that finished before the freeze took hold is let go and the next
    /// one tried. Returns the slide caught, the process still stopped.
    /// </summary>
    private static string FreezeMidSlide(CliProcess run, string outDir)
    {
        var clock = Stopwatch.StartNew();
        var locks = Path.Combine(outDir, SlideOutputs.LockFolder);
        foreach (var id in Ids.Skip(1))
        {
            var outputs = new SlideOutputs(outDir, id);
            while (!File.Exists(outputs.Lock) && !File.Exists(outputs.Manifest))
            {
                Assert.That(run.Process.HasExited, Is.False, $"the run ended before any slide was caught mid-way:\n{run.Output}");
                Assert.That(clock.Elapsed, Is.LessThan(Hang), "no slide started");
                Thread.Sleep(1);
            }
            run.Freeze(TimeSpan.FromSeconds(30));
            if (File.Exists(outputs.Lock) && !File.Exists(outputs.Manifest)) return id;
            run.Signal(CliProcess.SigCont);
        }
        Assert.Fail($"no slide was caught mid-way in {locks}:\n{run.Output}");
        return "";
    }

    [Test]
    public async Task SigkillMidSlideThenRerunEqualsAnUninterruptedRun()
    {
        var dir = Path.Combine(_dir, "sigkill");
        string caught;
        using (var run = Start(dir))
        {
            caught = FreezeMidSlide(run, dir);
            run.Signal(CliProcess.SigKill);
            Assert.That(await run.ExitCodeAsync(Hang), Is.EqualTo(128 + CliProcess.SigKill));
        }
        TestContext.Out.WriteLine($"SIGKILL while {caught} was in progress");
        var slide = new SlideOutputs(dir, caught);
        Assert.That(File.Exists(slide.Manifest), Is.False);
        Assert.That(File.Exists(slide.Lock), Is.True, "a killed process leaves its lock file (the kernel drops only the flock)");
        int position = Array.IndexOf(Ids, caught);
        foreach (var id in Ids.Take(position))
            Assert.That(File.Exists(new SlideOutputs(dir, id).Manifest), Is.True, $"{id} finished before the kill");

        using (var rerun = Start(dir))
        {
            Assert.That(await rerun.ExitCodeAsync(Hang), Is.Zero, rerun.Output);
            Assert.That(rerun.Output, Does.Contain($"slides: {Ids.Length - position} done, {position} skipped"));
        }
        AssertSameAsReference(dir);
    }

    [Test]
    public async Task SigintMidSlideCleansUpAndRerunEqualsAnUninterruptedRun()
    {
        var dir = Path.Combine(_dir, "sigint");
        string caught, output;
        int exitCode;
        using (var run = Start(dir))
        {
            caught = FreezeMidSlide(run, dir);
            run.Signal(CliProcess.SigInt);
            run.Signal(CliProcess.SigCont);
            exitCode = await run.ExitCodeAsync(Hang);
            output = run.Output;
        }
        Assert.That(output, Does.Contain("interrupted: cleaning up the slide in progress"));
        // Ctrl-C is handled on its own thread while the run goes on: when the freeze fell after the slide's last
        // cancellation check (just before its manifest is written), the slide completes; otherwise it is removed.
        // Either way the slides after it never start, and no lock or temporary file is left.
        bool finished = File.Exists(new SlideOutputs(dir, caught).Manifest);
        TestContext.Out.WriteLine($"SIGINT while {caught} was in progress: {(finished ? "it completed first" : "it was cleaned up")}");
        int completed = Array.IndexOf(Ids, caught) + (finished ? 1 : 0);
        if (completed < Ids.Length)
        {
            Assert.That(exitCode, Is.EqualTo(130), output);
            Assert.That(output, Does.Contain("cancelled"));
        }
        else
            Assert.That(exitCode, Is.Zero, "Ctrl-C after the last slide's last check: nothing was left to stop\n" + output);
        foreach (var id in Ids.Take(completed))
            Assert.That(File.Exists(new SlideOutputs(dir, id).Manifest), Is.True, $"{id} finished before Ctrl-C took effect");
        foreach (var id in Ids.Skip(completed))
            Assert.That(PipelineTestData.FilesOf(dir, id), Is.Empty, $"nothing of {id} is left (interrupted or never started)\n{Listing(dir)}");
        Assert.That(PipelineTestData.TempFiles(dir), Is.Empty, "no temporary files");
        Assert.That(Directory.EnumerateFileSystemEntries(Path.Combine(dir, SlideOutputs.LockFolder)), Is.Empty, "no lock files");

        using (var rerun = Start(dir))
        {
            Assert.That(await rerun.ExitCodeAsync(Hang), Is.Zero, rerun.Output);
            Assert.That(rerun.Output, Does.Contain($"slides: {Ids.Length - completed} done, {completed} skipped"));
        }
        AssertSameAsReference(dir);
    }

    private static string Listing(string dir) =>
        string.Join("\n", Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order(StringComparer.Ordinal));

    /// <summary>Every output file byte for byte; manifests without their volatile fields; no debris.</summary>
    private void AssertSameAsReference(string dir)
    {
        foreach (var id in Ids)
        {
            var a = new SlideOutputs(_reference, id);
            var b = new SlideOutputs(dir, id);
            foreach (var (role, file) in a.Files)
                Assert.That(File.ReadAllBytes(b.Files[role]), Is.EqualTo(File.ReadAllBytes(file)), $"{id} {role}");
            Assert.That(StableManifest(b.Manifest), Is.EqualTo(StableManifest(a.Manifest)), $"{id} manifest");
        }
        var names = (string d) => Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(d, f)).Order(StringComparer.Ordinal);
        Assert.That(names(dir), Is.EqualTo(names(_reference)), "the same files, no temporaries or locks left");
    }

    private static string StableManifest(string path)
    {
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        foreach (var field in VolatileManifestFields)
            Assert.That(json.Remove(field), Is.True, $"{path}: no '{field}'");
        return json.ToJsonString();
    }
}
