using System.Runtime.InteropServices;
using GigaPath.Pipeline;
using GigaPath.Tests.Slides;
using NUnit.Framework;

namespace GigaPath.Tests.Pipeline;

public class CohortInputsTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("cohort-inputs");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private string Csv(string text)
    {
        var path = Path.Combine(_dir, "cohort.csv");
        File.WriteAllText(path, text);
        return path;
    }

    [Test]
    public void CsvManifestsResolvePathsIdsAndMpp()
    {
        var csv = Csv("\uFEFFSlide_ID, path ,mpp,notes\r\ncase-2,\"sub dir/x, y.svs\",0.25,\"said \"\"hi\"\"\r\non two lines\"\n,/abs/slide.ndpi,,\n\n");
        var jobs = CohortInputs.ReadCsv(csv);
        Assert.That(jobs, Has.Count.EqualTo(2));
        Assert.That(jobs[0], Is.EqualTo(new SlideJob("case-2", Path.Combine(_dir, "sub dir/x, y.svs"), 0.25)));
        Assert.That(jobs[1], Is.EqualTo(new SlideJob("slide", "/abs/slide.ndpi")));
    }

    [Test]
    public void BadCsvManifestsNameTheFileAndLine()
    {
        Assert.That(Assert.Throws<GigaPathException>(() => CohortInputs.ReadCsv(Csv("id,file\na,b\n")))!.Message,
            Does.Contain("cohort.csv").And.Contain("no 'path' or 'slide_path' column"));
        Assert.That(Assert.Throws<GigaPathException>(() => CohortInputs.ReadCsv(Csv("path,mpp\na.svs,0.5\nb.svs,fast\n")))!.Message,
            Does.Contain("line 3").And.Contain("mpp 'fast'"));
        Assert.That(Assert.Throws<GigaPathException>(() => CohortInputs.ReadCsv(Csv("path,mpp\n,0.5\n")))!.Message, Does.Contain("line 2: empty 'path'"));
        Assert.That(Assert.Throws<GigaPathException>(() => CohortInputs.ReadCsv(Csv("path\n\"a.svs\n")))!.Message, Does.Contain("unterminated"));
        Assert.That(Assert.Throws<GigaPathException>(() => CohortInputs.ReadCsv(Csv("path\n")))!.Message, Does.Contain("lists no slides"));
        Assert.That(Assert.Throws<GigaPathException>(() => CohortInputs.Expand([Csv("path,slide_id\na.svs,../x\n")]))!.Message,
            Does.Contain("'../x' cannot name output files"));
    }

    [Test]
    public void FoldersGiveTheirSlideFilesSortedAndSkipTheOutputFolder()
    {
        foreach (var name in new[] { "b.svs", "a.tiff", "c.png", "notes.txt", ".hidden.svs" })
            File.WriteAllText(Path.Combine(_dir, name), "");
        var outDir = Directory.CreateDirectory(Path.Combine(_dir, "out")).FullName;
        File.WriteAllText(Path.Combine(outDir, "a.thumbnail.png"), "");
        var jobs = CohortInputs.Expand([_dir, outDir, Path.Combine(_dir, "missing.svs")], outDir);
        Assert.That(jobs.Select(j => j.SlideId), Is.EqualTo(new[] { "a", "b", "c", "missing" }), "sorted by id; a missing file is a job that will fail");
        Assert.That(Assert.Throws<GigaPathException>(() => CohortInputs.Expand([outDir]))!.Message,
            Does.Contain("holds no slide files"), "thumbnails written by run are not slides");
    }

    [Test]
    public void DuplicateIdsAreRefused()
    {
        var e = Assert.Throws<GigaPathException>(() => CohortInputs.Expand([SlideFixtures.SmallSvs, Path.Combine(_dir, "small.tiff")]));
        Assert.That(e!.Message, Does.Contain("'small'").And.Contain("slide_id"));
    }

    [TestCase("0/1", 0, 1)]
    [TestCase("3/4", 3, 4)]
    [TestCase(" 2 / 10 ", 2, 10)]
    public void ShardsParse(string text, int k, int n) => Assert.That(ShardSpec.Parse(text), Is.EqualTo(new ShardSpec(k, n)));

    [TestCase("4/4")]
    [TestCase("-1/4")]
    [TestCase("1/0")]
    [TestCase("1")]
    [TestCase("a/b")]
    public void BadShardsAreRefused(string text) =>
        Assert.That(Assert.Throws<GigaPathException>(() => ShardSpec.Parse(text))!.Message, Does.Contain("0 <= K < N"));

    [Test]
    public void ShardsCoverTheCohortOnce()
    {
        var jobs = Enumerable.Range(0, 11).Select(i => new SlideJob($"s{i:D2}", $"/x/s{i}.svs")).Reverse().ToList();
        var shards = Enumerable.Range(0, 3).Select(k => CohortInputs.Shard(jobs, new ShardSpec(k, 3))).ToList();
        Assert.That(shards.SelectMany(s => s).Select(j => j.SlideId).Order(), Is.EqualTo(jobs.Select(j => j.SlideId).Order()));
        Assert.That(shards.Select(s => s.Count), Is.EqualTo(new[] { 4, 4, 3 }));
        Assert.That(shards[1].Select(j => j.SlideId), Is.EqualTo(new[] { "s01", "s04", "s07", "s10" }));
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int mkfifo([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);

    [DllImport("libc", SetLastError = true)]
    private static extern int link([MarshalAs(UnmanagedType.LPUTF8Str)] string existing, [MarshalAs(UnmanagedType.LPUTF8Str)] string newPath);

    /// <summary>A FIFO at <paramref name="path"/> (opening it for reading would block until a writer comes: never, here).</summary>
    internal static void MakeFifo(string path) =>
        Assert.That(mkfifo(path, Convert.ToUInt32("644", 8)), Is.Zero, $"mkfifo {path}: errno {Marshal.GetLastPInvokeError()}");

    [Test]
    public void AHardLinkIsTheSameSlide()
    {
        var slide = Path.Combine(_dir, "s0.svs");
        File.Copy(SlideFixtures.SmallSvs, slide);
        Assert.That(link(slide, Path.Combine(_dir, "h0.svs")), Is.Zero, $"link: errno {Marshal.GetLastPInvokeError()}");
        var e = Assert.Throws<GigaPathException>(() => CohortInputs.Expand([_dir]))!;
        Assert.That(e.Message, Does.Contain("listed more than once").And.Contain("'s0'").And.Contain("'h0'").And.Contain(Path.Combine(_dir, "h0.svs")));
    }

    [Test]
    public async Task LinkLoopsAndFifosAreJobsThatFailAloneWithoutBeingOpened()
    {
        File.Copy(SlideFixtures.SmallSvs, Path.Combine(_dir, "good.svs"));
        File.CreateSymbolicLink(Path.Combine(_dir, "loop.svs"), Path.Combine(_dir, "loop.svs"));
        File.CreateSymbolicLink(Path.Combine(_dir, "ping.svs"), Path.Combine(_dir, "pong.svs"));
        File.CreateSymbolicLink(Path.Combine(_dir, "pong.svs"), Path.Combine(_dir, "ping.svs"));
        MakeFifo(Path.Combine(_dir, "fifo.svs"));

        // Expanding the folder neither throws nor blocks (the FIFO is never opened).
        var jobs = await Task.Run(() => CohortInputs.Expand([_dir])).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(jobs.Select(j => j.SlideId), Is.EquivalentTo(new[] { "fifo", "good", "loop", "ping", "pong" }));

        var fifo = (await Assert.ThrowsAsync<GigaPathException>(() => Task.Run(() => GigaPath.Slides.SlideOpener.Open(Path.Combine(_dir, "fifo.svs"))).WaitAsync(TimeSpan.FromSeconds(30))))!;
        Assert.That(fifo.Message, Does.Contain(Path.Combine(_dir, "fifo.svs")).And.Contain("FIFO").And.Contain("not a regular file"));
        foreach (var loop in new[] { "loop.svs", "ping.svs" })
        {
            var e = Assert.Throws<GigaPathException>(() => GigaPath.Slides.SlideOpener.Open(Path.Combine(_dir, loop)))!;
            Assert.That(e.Message, Does.Contain(Path.Combine(_dir, loop)).And.Contain("a loop of symbolic links"), loop);
        }
        using var good = GigaPath.Slides.SlideOpener.Open(Path.Combine(_dir, "good.svs"));
    }
}
