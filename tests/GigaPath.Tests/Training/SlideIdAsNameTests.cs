using GigaPath.Pipeline;
using GigaPath.Training;
using NUnit.Framework;

namespace GigaPath.Tests.Training;

/// <summary>
/// Issue 14, case 4: slide ids are file names inside the features folder, never paths. Ids that escape the folder or
/// name the same file under another spelling (which put one slide in several folds and gave AUROC 1.0) are refused
/// before any training, naming the rows.
/// </summary>
public class SlideIdAsNameTests
{
    private SyntheticCohort _cohort = null!;

    [SetUp]
    public void SetUp() => _cohort = SyntheticCohort.Create(slides: 12, minTiles: 5, maxTiles: 8);

    [TearDown]
    public void TearDown() => _cohort.Delete();

    private (int Code, string Error, string Out) Finetune()
    {
        var outDir = Path.Combine(_cohort.Root, "out");
        var run = GigaPath.Tests.Cli.CliInvocation.Run("finetune", "--labels", _cohort.LabelsPath, "--features", _cohort.FeaturesDir,
            "--head", "linear", "--folds", "3", "--out", outDir);
        TestContext.Out.WriteLine(run.Error);
        return (run.ExitCode, run.Error, outDir);
    }

    private void AssertRefused((int Code, string Error, string Out) r, params string[] fragments)
    {
        Assert.That(r.Code, Is.EqualTo(2), r.Error);
        foreach (var f in fragments) Assert.That(r.Error, Does.Contain(f));
        Assert.That(File.Exists(Path.Combine(r.Out, "report.json")), Is.False, "nothing may be trained or written");
    }

    /// <summary>The labels file with extra rows: each a copy of row <c>from</c> (a 1-based data row) under another id.</summary>
    private void AddAliases(params (int From, string Id)[] aliases)
    {
        var lines = File.ReadAllLines(_cohort.LabelsPath).ToList();
        foreach (var (from, id) in aliases)
        {
            var fields = lines[from].Split(',');
            fields[0] = id;
            lines.Add(string.Join(",", fields));
        }
        File.WriteAllLines(_cohort.LabelsPath, lines);
    }

    [Test]
    public void IdsThatArePathsAreRefusedNamingTheRows()
    {
        // ./slide_000 and ../features/slide_000 are the file slide_000 names; the third one leaves the folder.
        AddAliases((1, "./slide_000"), (1, "../features/slide_000"), (2, "../../../etc/passwd"), (3, ".."));
        AssertRefused(Finetune(), "labels.csv", "not paths", "4 row(s)",
            "line 14: './slide_000' contains a path separator", "line 15: '../features/slide_000' contains a path separator",
            "line 16: '../../../etc/passwd' contains a path separator", "line 17: '..' is a relative path");
        Assert.That(() => FeatureFiles.Find(_cohort.FeaturesDir, "../../../etc/passwd"),
            Throws.InstanceOf<GigaPathException>().With.Message.Contain("not paths"), "the lookup itself never leaves the folder");
    }

    [Test]
    public void TwoIdsOfOneFileAreRefusedNamingTheRows()
    {
        // A symbolic link is another name for the same slide: it would land in two folds at once.
        File.CreateSymbolicLink(Path.Combine(_cohort.FeaturesDir, "copy_of_000.safetensors"), Path.Combine(_cohort.FeaturesDir, "slide_000.safetensors"));
        AddAliases((1, "copy_of_000"));
        AssertRefused(Finetune(), "labels.csv", "same feature file", "several folds",
            "'slide_000' (line 2), 'copy_of_000' (line 14)", Path.Combine(_cohort.FeaturesDir, "slide_000.safetensors"));
    }

    [Test]
    public void TwoManifestIdsOfOneSlideFileAreRefused()
    {
        var slide = Path.Combine(_cohort.Root, "s.png");
        File.WriteAllBytes(slide, [0x89, (byte)'P', (byte)'N', (byte)'G']);
        File.CreateSymbolicLink(Path.Combine(_cohort.Root, "t.png"), slide);
        var csv = Path.Combine(_cohort.Root, "cohort.csv");
        File.WriteAllText(csv, "slide_id,path\na,s.png\nb,./s.png\nc,t.png\n");
        var error = Assert.Throws<GigaPathException>(() => CohortInputs.Expand([csv]))!;
        Assert.That(error.Message, Does.Contain("listed more than once").And.Contain(slide).And.Contain("'a'").And.Contain("'b'").And.Contain("'c'"));
    }
}
