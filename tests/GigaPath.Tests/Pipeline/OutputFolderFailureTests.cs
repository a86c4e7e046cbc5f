using System.Diagnostics;
using GigaPath.Tests.Cli;
using NUnit.Framework;

namespace GigaPath.Tests.Pipeline;

/// <summary>
/// Issue 14, case 6 (run --out): an output folder on a read-only file system, or a disk that fills up while the
/// slide's lock is written, ends in a clear message and exit 2, and leaves no lock file behind. The file systems are
/// real: a tmpfs mounted read-only or filled up inside a private mount namespace (<c>unshare</c>, which needs no
/// privileges beyond those of an unprivileged user namespace), and <c>/dev/full</c>, the kernel's always-full device.
/// </summary>
public class OutputFolderFailureTests
{
    private string _dir = "";
    private string _csv = "";

    [SetUp]
    public void SetUp()
    {
        _dir = FixturePaths.TempDir("out-failures");
        PipelineTestData.WriteCrop(Path.Combine(_dir, "s1.png"), 700, 1100);
        _csv = Path.Combine(_dir, "cohort.csv");
        File.WriteAllText(_csv, "slide_id,path,mpp\ns1,s1.png,0.5\n");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    /// <summary>gigapath run on the test cohort, but for --out.</summary>
    private string[] RunArgs => ["run", _csv, "--tile-model", PipelineTestData.TileModelDir, "--slide-model", PipelineTestData.SlideModelDir, "--progress", "lines"];

    [Test]
    public void ALockFileThatCannotBeWrittenIsAClearErrorAndIsRemoved()
    {
        // The lock file's name leads to /dev/full: every write to it fails, as on a full disk.
        var outDir = Path.Combine(_dir, "out");
        var lockPath = Path.Combine(outDir, ".locks", "s1.lock");
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        File.CreateSymbolicLink(lockPath, "/dev/full");
        var run = CliInvocation.Run([.. RunArgs, "--out", outDir]);
        TestContext.Out.WriteLine(run.Error);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.Error, Does.Contain($"error: {lockPath}: cannot write the slide's lock file"));
        Assert.That(run.Error, Does.Not.Contain("   at "), "no stack trace");
        Assert.That(Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(lockPath)!), Is.Empty, "no lock file left");
    }

    [Test]
    public void AReadOnlyFileSystemIsAClearError()
    {
        // A missing --out on a read-only file system, then an existing one remounted read-only.
        var result = InPrivateMount(
            "mount -t tmpfs -o ro,size=1m none \"$MNT\"; cli \"$MNT/new\"; echo \"exit=$?\"; " +
            "mount -o remount,rw \"$MNT\"; mkdir \"$MNT/old\"; mount -o remount,ro \"$MNT\"; cli \"$MNT/old\"; echo \"exit=$?\"; ls -A \"$MNT/old\"; echo end");
        Assert.That(result, Does.Contain("/new: cannot create the output folder").And.Contain("Read-only file system"));
        Assert.That(result, Does.Contain("/old: cannot create the output folder or its .locks folder"));
        Assert.That(result.Split('\n').Where(l => l.StartsWith("exit=", StringComparison.Ordinal)), Is.EqualTo(new[] { "exit=2", "exit=2" }));
        Assert.That(result, Does.Not.Contain("   at "), "no stack trace");
        Assert.That(result.TrimEnd(), Does.EndWith("exit=2\nend"), "nothing was created in the read-only folder");
    }

    [Test]
    public void ADiskThatFillsUpWhileTheLockIsWrittenIsAClearErrorAndLeavesNoLock()
    {
        // A 256 KiB tmpfs filled to the last block: creating the lock file succeeds, writing into it fails (ENOSPC).
        var result = InPrivateMount(
            "mount -t tmpfs -o size=256k none \"$MNT\"; mkdir -p \"$MNT/out/.locks\"; dd if=/dev/zero of=\"$MNT/fill\" bs=4k 2>/dev/null; " +
            "cli \"$MNT/out\"; echo \"exit=$?\"; echo locks:; ls -A \"$MNT/out/.locks\"; echo end");
        Assert.That(result, Does.Contain("/out/.locks/s1.lock: cannot write the slide's lock file").And.Contain("No space left on device"));
        Assert.That(result, Does.Contain("exit=2"));
        Assert.That(result, Does.Not.Contain("   at "), "no stack trace");
        Assert.That(result.TrimEnd(), Does.EndWith("locks:\nend"), "the empty lock file was removed");
    }

    /// <summary>
    /// Runs <paramref name="script"/> with <c>sh</c> in a private user and mount namespace, where $MNT is an empty
    /// mount point and <c>cli DIR</c> runs <c>gigapath run</c> on the test cohort with --out DIR (its stderr merged into stdout). Returns stdout and stderr.
    /// </summary>
    private string InPrivateMount(string script)
    {
        var mnt = Directory.CreateDirectory(Path.Combine(_dir, "mnt")).FullName;
        var cli = Path.Combine(AppContext.BaseDirectory, "GigaPath.Cli.dll");
        var runArgs = string.Join(" ", RunArgs.Select(a => $"'{a}'"));
        var psi = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--user", "--map-root-user", "--mount", "sh", "-c", $"MNT='{mnt}'; cli() {{ dotnet '{cli}' {runArgs} --out \"$1\" 2>&1; }}; {script}" })
            psi.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Ignore($"unshare is not installed: {e.Message}");
            throw;
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            Assert.That(process.WaitForExit(TimeSpan.FromMinutes(3)), Is.True, "the CLI finished");
            var output = stdout.Result + stderr.Result;
            TestContext.Out.WriteLine(output);
            if (output.Contains("unshare failed", StringComparison.Ordinal) || output.Contains("unshare: ", StringComparison.Ordinal))
                Assert.Ignore($"this machine allows no private mount namespace: {output.Trim()}");
            return stdout.Result;
        }
    }
}
