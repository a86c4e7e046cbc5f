using GigaPath.Cli.Commands;
using GigaPath.Pipeline;
using GigaPath.Tests.Cli;
using NUnit.Framework;

namespace GigaPath.Tests.Pipeline;

/// <summary>
/// Issue 14, case 3: a rerun into the same --out never loses finished outputs. Another tile model (here one with NaN
/// weights, which fails) leaves the complete outputs alone without --force, and with --force replaces them only once
/// the new ones are complete; a failure leaves the old ones exactly as they were.
/// </summary>
public class RerunSafetyTests
{
    private string _dir = "";
    private string _csv = "";

    [SetUp]
    public void SetUp()
    {
        _dir = FixturePaths.TempDir("rerun-safety");
        PipelineTestData.WriteCrop(Path.Combine(_dir, "s1.png"), 700, 1100);
        _csv = Path.Combine(_dir, "cohort.csv");
        File.WriteAllText(_csv, "slide_id,path,mpp\ns1,s1.png,0.5\n");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private CliInvocation Run(string out_, string tileModel, params string[] extra) =>
        CliInvocation.Run(["run", _csv, "--tile-model", tileModel, "--slide-model", PipelineTestData.SlideModelDir, "--out", out_,
            "--batch-size", "4", "--progress", "lines", .. extra]);

    /// <summary>Every file under the output folder with its bytes (lock folder excluded: it is bookkeeping).</summary>
    private static Dictionary<string, byte[]> Snapshot(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .Where(f => !Path.GetRelativePath(dir, f).StartsWith(SlideOutputs.LockFolder, StringComparison.Ordinal))
            .ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes);

    [Test]
    public void AFailedRerunWithAnotherTileModelKeepsTheFinishedOutputs()
    {
        var out_ = Path.Combine(_dir, "k9b");
        var first = Run(out_, PipelineTestData.TileModelDir);
        Assert.That(first.ExitCode, Is.EqualTo(0), first.ToString());
        var done = Snapshot(out_);
        Assert.That(done.Keys, Is.SupersetOf(new[] { "s1.h5", "s1.slide.safetensors", "s1.thumbnail.png", "s1.manifest.json" }));

        var nan = PoisonedWeights.Copy(PipelineTestData.TileModelDir, Path.Combine(_dir, "nan-tile"), "patch_embed.proj.bias");
        var unforced = Run(out_, nan);
        Assert.That(unforced.ExitCode, Is.EqualTo(RunCommand.SlidesFailedExitCode), unforced.ToString());
        Assert.That(unforced.Out, Does.Contain("kept (other settings) s1").And.Contain("tile_model_sha256").And.Contain("--force"));
        Assert.That(Snapshot(out_), Is.EqualTo(done), "outputs of other settings are left exactly as they were");

        var forced = Run(out_, nan, "--force");
        Assert.That(forced.ExitCode, Is.EqualTo(RunCommand.SlidesFailedExitCode), forced.ToString());
        Assert.That(forced.Out, Does.Contain("FAILED s1").And.Contain("NaN or infinity").And.Contain("weights").And.Contain("nan-tile"));
        var after = Snapshot(out_);
        var record = Path.Combine(SlideOutputs.FailedFolder, "s1.json");
        Assert.That(after.Keys, Does.Contain(record), "the failure is recorded");
        after.Remove(record);
        Assert.That(after, Is.EqualTo(done), "the failed recomputation left the complete outputs byte for byte");
        Assert.That(Directory.EnumerateFileSystemEntries(Path.Combine(out_, SlideOutputs.LockFolder)), Is.Empty, "no lock left");

        var again = Run(out_, PipelineTestData.TileModelDir);
        Assert.That(again.ExitCode, Is.EqualTo(0), again.ToString());
        Assert.That(again.Out, Does.Contain("1 skipped (already complete)"), "the old outputs are still complete for their settings");
    }

    [Test]
    public void AForcedRerunReplacesTheOutputsOnlyWhenComplete()
    {
        var out_ = Path.Combine(_dir, "forced");
        Assert.That(Run(out_, PipelineTestData.TileModelDir).ExitCode, Is.EqualTo(0));
        var mean = File.ReadAllBytes(Path.Combine(out_, "s1.slide.safetensors"));
        var cls = Run(out_, PipelineTestData.TileModelDir, "--pool", "cls", "--force", "--save-tiles");
        Assert.That(cls.ExitCode, Is.EqualTo(0), cls.ToString());
        var manifest = SlideManifest.Read(Path.Combine(out_, "s1.manifest.json"));
        Assert.That(manifest.Settings.Pool, Is.EqualTo("cls"));
        Assert.That(File.ReadAllBytes(Path.Combine(out_, "s1.slide.safetensors")), Is.Not.EqualTo(mean));
        Assert.That(Directory.EnumerateFiles(Path.Combine(out_, "s1.tiles"), "*.png").Count(), Is.EqualTo(manifest.SavedTiles!.Count));
        Assert.That(new SlideOutputs(out_, "s1").Incomplete(manifest.Settings), Is.Null);
        Assert.That(Directory.EnumerateFileSystemEntries(out_, "*", SearchOption.AllDirectories)
            .Where(p => p.Contains(SlideStaging.Folder, StringComparison.Ordinal) && !Directory.Exists(p)), Is.Empty, "nothing left in staging");
    }
}
