using GigaPath.Pipeline;
using NUnit.Framework;

namespace GigaPath.Tests.Pipeline;

public class SlideLockTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("slide-lock");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    [Test]
    public void OneHolderAtATimeAndTheFileGoesWithTheLock()
    {
        var path = Path.Combine(_dir, ".locks", "s.lock");
        var first = SlideLock.TryAcquire(path, out _);
        Assert.That(first, Is.Not.Null);
        Assert.That(SlideLock.TryAcquire(path, out var holder), Is.Null);
        Assert.That(holder, Does.Contain("another process holds").And.Contain(path));
        first!.Dispose();
        Assert.That(File.Exists(path), Is.False);
        using var second = SlideLock.TryAcquire(path, out _);
        Assert.That(second, Is.Not.Null);
    }

    [Test]
    public void ALockFileNobodyHoldsIsTakenOverAndRecordsTheNewHolder()
    {
        var path = Path.Combine(_dir, "s.lock");
        File.WriteAllText(path, "pid 999999\nhost gone\nstarted 2020-01-01T00:00:00Z\n");
        using (var taken = SlideLock.TryAcquire(path, out _))
        {
            Assert.That(taken, Is.Not.Null, "the process that wrote it is dead: the kernel holds no lock for it");
            // .NET readers honour the exclusive flock; a person with `cat` (no flock) sees who holds the slide.
            Assert.Throws<IOException>(() => File.ReadAllText(path));
            using var cat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("cat", path) { RedirectStandardOutput = true })!;
            var text = cat.StandardOutput.ReadToEnd();
            cat.WaitForExit();
            Assert.That(text, Does.StartWith($"pid {Environment.ProcessId}\nhost {Environment.MachineName}\n"));
        }
    }
}
